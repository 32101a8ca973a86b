-- Liveness challenges: issued to one key (and, when named, for one subject), answered once with
-- a burst of frames. A passed challenge holds its token's expiry and, until the token is used or
-- expires, the face its frames showed (sealed, transformed like a template), so that the
-- enrolment or verification the token allows is of that face.
CREATE TABLE liveness_challenges (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key_id TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    actions TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    answered_at BIGINT,
    passed BIGINT,
    probe BYTEA,
    token_expires_at BIGINT,
    token_used_at BIGINT
);
CREATE INDEX liveness_challenges_expiry ON liveness_challenges(expires_at);

-- Which purposes of a tenant need a fresh liveness result before enrolment and verification.
CREATE TABLE liveness_policy (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    required BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, purpose)
);
