-- The audit log: one Merkle tree per tenant (RFC 9162 hashing; crates/audit).
-- audit_heads holds each log's size; appends take its row lock (an UPDATE) inside the
-- action's own transaction, so appends from several nodes are serialised into one tree.
CREATE TABLE audit_heads (
    tenant_id TEXT PRIMARY KEY,
    size BIGINT NOT NULL
);
-- The entries, each as the exact bytes its leaf hash covers. target and actor_key are copies
-- for the per-subject and per-key queries; the verifier checks only the bytes.
CREATE TABLE audit_entries (
    tenant_id TEXT NOT NULL,
    idx BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor_key TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    entry BLOB NOT NULL,
    PRIMARY KEY (tenant_id, idx)
);
CREATE INDEX audit_entries_target ON audit_entries(tenant_id, target, idx);
CREATE INDEX audit_entries_actor ON audit_entries(tenant_id, actor_key, at);
-- The hashes of the perfect subtrees: level 0 the leaves, level l the run of 2^l leaves
-- starting at idx * 2^l. Written once, never updated.
CREATE TABLE audit_nodes (
    tenant_id TEXT NOT NULL,
    level BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (tenant_id, level, idx)
);

-- Keys gain the auditor role (reads the audit log, nothing else), a site scope for device
-- keys, and suspension (by the abuse rules; only an admin reinstates). SQLite cannot alter a
-- CHECK: rebuild (no table references api_keys).
CREATE TABLE api_keys_new (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'device', 'auditor')),
    key_hash BLOB NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    site TEXT,
    suspended_at BIGINT,
    suspended_reason TEXT,
    reinstated_at BIGINT
);
INSERT INTO api_keys_new (id, tenant_id, role, key_hash, created_at, expires_at, revoked_at)
    SELECT id, tenant_id, role, key_hash, created_at, expires_at, revoked_at FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_new RENAME TO api_keys;

-- The networks (IPv4 /24, IPv6 /48) each key was used from: a key used from a new one is
-- suspended until an admin reinstates it (its new network is then known).
CREATE TABLE key_networks (
    tenant_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    network TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key_id, network)
);
