-- Passes (signed QR credentials): the signing-key epochs, the passes issued (their claims only:
-- a pass is re-signed from them, never stored), revocations (by hash, kept while the pass could
-- still be shown), and venue check-ins (pseudonym, venue, time; swept after their retention).
CREATE TABLE pass_keys (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    epoch BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    PRIMARY KEY (tenant_id, epoch)
);

CREATE TABLE passes (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    epoch BIGINT NOT NULL,
    alg TEXT NOT NULL CHECK (alg IN ('EdDSA', 'ES256')),
    access TEXT NOT NULL,
    verifier TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX passes_subject ON passes(tenant_id, subject_id);
CREATE INDEX passes_epoch ON passes(tenant_id, epoch, expires_at);

CREATE TABLE pass_revocations (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    hash BLOB NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, hash)
);

CREATE TABLE checkins (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    venue TEXT NOT NULL,
    pseudonym TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX checkins_time ON checkins(at);

-- Consent for purpose 'pass' (SQLite cannot alter a CHECK: the table is rebuilt; no other
-- table refers to it).
CREATE TABLE consents_v2 (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('access', 'verification', 'pass')),
    retention_days INTEGER NOT NULL CHECK (retention_days > 0),
    granted_at BIGINT NOT NULL,
    withdrawn_at BIGINT,
    receipt BLOB NOT NULL
);
INSERT INTO consents_v2 SELECT * FROM consents;
DROP TABLE consents;
ALTER TABLE consents_v2 RENAME TO consents;
CREATE INDEX consents_subject ON consents(subject_id);
