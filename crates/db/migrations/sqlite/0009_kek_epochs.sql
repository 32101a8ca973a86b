-- Key-encryption keys in epochs. The secrets live in the key store (a directory apart from the
-- database, or a PKCS#11 token), never here; this table only names them, so that a data key
-- wrapped under an epoch keeps that epoch's row alive (the foreign key) and an epoch is
-- destroyed only once nothing refers to it.
CREATE TABLE key_store (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE kek_epochs (
    id TEXT PRIMARY KEY,
    -- 0: a key derived from the root key (databases from before epochs); n > 0: epoch n.
    seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX kek_epochs_seq ON kek_epochs(seq) WHERE seq > 0;

INSERT INTO kek_epochs (id, seq, created_at) SELECT DISTINCT kek_id, 0, 0 FROM data_keys;

CREATE TABLE data_keys_new (
    subject_id TEXT PRIMARY KEY REFERENCES subjects(id) ON DELETE CASCADE,
    kek_id TEXT NOT NULL REFERENCES kek_epochs(id),
    wrapped BLOB NOT NULL
);
INSERT INTO data_keys_new (subject_id, kek_id, wrapped) SELECT subject_id, kek_id, wrapped FROM data_keys;
DROP TABLE data_keys;
ALTER TABLE data_keys_new RENAME TO data_keys;
CREATE INDEX data_keys_by_kek ON data_keys(kek_id);

-- Which envelope a template is sealed in (the version byte of `sealed`, kept as a column so that
-- the start-up upgrade of version-1 envelopes finds them without reading every template).
ALTER TABLE templates ADD COLUMN envelope INTEGER NOT NULL DEFAULT 1;

-- The generation of the tenant's template transform: 0 at creation, one more at each re-key
-- (`consentry admin rekey-transform`), which re-transforms every template of the tenant.
ALTER TABLE tenants ADD COLUMN transform_gen BIGINT NOT NULL DEFAULT 0;
