-- Verification, consent withdrawal, subject views and deletion (including the cascade from
-- subjects) find templates by subject: without this index each of them scanned every template
-- of the tenant (seen with 10k people enrolled; docs/benchmarks.md).
CREATE INDEX templates_subject ON templates(subject_id, purpose);
