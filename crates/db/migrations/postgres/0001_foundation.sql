-- Consentry foundation schema (PostgreSQL). Times are Unix seconds. No table holds images; templates
-- are ciphertext under per-subject data keys, which are stored only wrapped by the tenant's KEK
-- (kept outside the database).
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kek_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'device')),
    key_hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE subjects (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
CREATE INDEX subjects_tenant ON subjects(tenant_id);

CREATE TABLE data_keys (
    subject_id TEXT PRIMARY KEY REFERENCES subjects(id) ON DELETE CASCADE,
    kek_id TEXT NOT NULL,
    wrapped BYTEA NOT NULL
);

CREATE TABLE consents (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('access', 'verification')),
    retention_days INTEGER NOT NULL CHECK (retention_days > 0),
    granted_at BIGINT NOT NULL,
    withdrawn_at BIGINT,
    receipt BYTEA NOT NULL
);
CREATE INDEX consents_subject ON consents(subject_id);

CREATE TABLE templates (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL CHECK (purpose IN ('access', 'verification')),
    model TEXT NOT NULL,
    sealed BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX templates_tenant ON templates(tenant_id);
CREATE INDEX templates_expiry ON templates(expires_at);

CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    subject_id TEXT NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('card', 'pin')),
    lookup BYTEA,
    secret_hash BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX credentials_subject ON credentials(subject_id);
CREATE UNIQUE INDEX credentials_card ON credentials(tenant_id, lookup);
