//! `consents`.

use sqlx::Row;

use super::Conn;
use crate::model::ConsentView;

/// A consent to store.
pub(crate) struct NewConsent<'a> {
    pub id: &'a str,
    pub subject: &'a str,
    pub purpose: &'a str,
    pub retention_days: i64,
    pub granted_at: i64,
    pub receipt: Vec<u8>,
}

/// Stores a consent of one of `tenant`'s subjects.
pub(crate) async fn insert(
    c: &mut Conn,
    tenant: &str,
    n: NewConsent<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consents (id, tenant_id, subject_id, purpose, retention_days, granted_at, receipt) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(n.id)
    .bind(tenant)
    .bind(n.subject)
    .bind(n.purpose)
    .bind(n.retention_days)
    .bind(n.granted_at)
    .bind(n.receipt)
    .execute(c)
    .await?;
    Ok(())
}

/// Every consent of a subject, active or withdrawn, oldest first.
pub(crate) async fn list(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
) -> Result<Vec<ConsentView>, sqlx::Error> {
    sqlx::query(
        "SELECT id, purpose, retention_days, granted_at, withdrawn_at FROM consents \
         WHERE subject_id = $1 AND tenant_id = $2 ORDER BY granted_at, id",
    )
    .bind(subject)
    .bind(tenant)
    .fetch_all(c)
    .await?
    .into_iter()
    .map(|r| {
        Ok(ConsentView {
            id: r.try_get("id")?,
            purpose: r.try_get("purpose")?,
            retention_days: r.try_get("retention_days")?,
            granted_at: r.try_get("granted_at")?,
            withdrawn_at: r.try_get("withdrawn_at")?,
        })
    })
    .collect()
}

/// The purpose of an active (not withdrawn) consent.
pub(crate) async fn active_purpose(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
    consent: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query(
        "SELECT purpose FROM consents WHERE id = $1 AND subject_id = $2 AND tenant_id = $3 \
         AND withdrawn_at IS NULL",
    )
    .bind(consent)
    .bind(subject)
    .bind(tenant)
    .fetch_optional(c)
    .await?
    .map(|r| r.try_get("purpose"))
    .transpose()
}

/// Marks a consent withdrawn.
pub(crate) async fn withdraw(
    c: &mut Conn,
    tenant: &str,
    consent: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE consents SET withdrawn_at = $1 WHERE id = $2 AND tenant_id = $3")
        .bind(at)
        .bind(consent)
        .bind(tenant)
        .execute(c)
        .await?;
    Ok(())
}

/// The longest retention (days) among the subject's active consents for `purpose`; `None`
/// when there is no active consent for it.
pub(crate) async fn active_retention(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
    purpose: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query(
        "SELECT MAX(retention_days) AS days FROM consents WHERE tenant_id = $1 AND subject_id = $2 \
         AND purpose = $3 AND withdrawn_at IS NULL",
    )
    .bind(tenant)
    .bind(subject)
    .bind(purpose)
    .fetch_one(c)
    .await?
    .try_get("days")
}
