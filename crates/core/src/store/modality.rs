//! `modality_policy`: which biometrics a purpose's decisions need.

use sqlx::Row;

use super::Conn;

/// Sets `purpose`'s modality (`face`, `voice`, `face_and_voice`, `face_or_voice`).
pub(crate) async fn set(
    c: &mut Conn,
    tenant: &str,
    purpose: &str,
    modality: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM modality_policy WHERE tenant_id = $1 AND purpose = $2")
        .bind(tenant)
        .bind(purpose)
        .execute(&mut *c)
        .await?;
    sqlx::query("INSERT INTO modality_policy (tenant_id, purpose, modality) VALUES ($1, $2, $3)")
        .bind(tenant)
        .bind(purpose)
        .bind(modality)
        .execute(c)
        .await?;
    Ok(())
}

/// `purpose`'s modality, when one was set (else the face alone).
pub(crate) async fn get(
    c: &mut Conn,
    tenant: &str,
    purpose: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query("SELECT modality FROM modality_policy WHERE tenant_id = $1 AND purpose = $2")
        .bind(tenant)
        .bind(purpose)
        .fetch_optional(c)
        .await?
        .map(|r| r.try_get("modality"))
        .transpose()
}
