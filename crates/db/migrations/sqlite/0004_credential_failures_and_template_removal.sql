-- Failed card/PIN decisions per API key, for the guessing limit (the rows of a key older than
-- the limit's window are deleted as new ones are written). Never holds the card number or PIN.
CREATE TABLE credential_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key_id TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX credential_failures_key ON credential_failures(tenant_id, key_id, at);
CREATE INDEX credential_failures_tenant ON credential_failures(tenant_id, at);

-- The retention sweep now names the templates it removed ('remove_template'), per tenant,
-- instead of asking every node to reload every gallery. SQLite cannot alter a CHECK: rebuild.
CREATE TABLE gallery_changes_new (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'remove_subject', 'remove_template', 'reload')),
    template_id TEXT,
    subject_id TEXT
);
INSERT INTO gallery_changes_new (seq, tenant_id, op, template_id, subject_id)
    SELECT seq, tenant_id, op, template_id, subject_id FROM gallery_changes;
DROP TABLE gallery_changes;
ALTER TABLE gallery_changes_new RENAME TO gallery_changes;
CREATE INDEX gallery_changes_tenant ON gallery_changes(tenant_id, seq);
