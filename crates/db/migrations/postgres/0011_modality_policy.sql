-- Which biometrics a tenant's decisions for a purpose need: 'face' (the default, when no row),
-- 'voice', 'face_and_voice' or 'face_or_voice'. Access (1:N) takes only 'face' and
-- 'face_and_voice': a voice alone does not pick one person out of many.
CREATE TABLE modality_policy (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    modality TEXT NOT NULL,
    PRIMARY KEY (tenant_id, purpose)
);
