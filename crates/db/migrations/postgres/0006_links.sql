-- Short-lived scoped links: one action on one subject for one purpose, usable only by the key
-- that minted it, until it expires. Stored as the token's SHA-256.
CREATE TABLE links (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL UNIQUE,
    key_id TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('subject.read', 'subject.accesses')),
    subject_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- The person's own token: reads who accessed their record, nothing else. Deleted with the
-- subject.
CREATE TABLE subject_tokens (
    subject_id TEXT PRIMARY KEY REFERENCES subjects(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
