-- Changes to each tenant's 1:N gallery, so every server node on the same database applies
-- enrolments and deletions made through another node (read on each identify; no polling).
-- tenant_id '*' asks every node to reload every gallery (after the retention sweep).
CREATE TABLE gallery_changes (
    seq BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'remove_subject', 'reload')),
    template_id TEXT,
    subject_id TEXT
);
CREATE INDEX gallery_changes_tenant ON gallery_changes(tenant_id, seq);
