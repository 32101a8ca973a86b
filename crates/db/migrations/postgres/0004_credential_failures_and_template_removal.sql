-- Failed card/PIN decisions per API key, for the guessing limit (the rows of a key older than
-- the limit's window are deleted as new ones are written). Never holds the card number or PIN.
CREATE TABLE credential_failures (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key_id TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX credential_failures_key ON credential_failures(tenant_id, key_id, at);
CREATE INDEX credential_failures_tenant ON credential_failures(tenant_id, at);

-- The retention sweep now names the templates it removed ('remove_template'), per tenant,
-- instead of asking every node to reload every gallery.
ALTER TABLE gallery_changes DROP CONSTRAINT gallery_changes_op_check;
ALTER TABLE gallery_changes ADD CONSTRAINT gallery_changes_op_check
    CHECK (op IN ('add', 'remove_subject', 'remove_template', 'reload'));
