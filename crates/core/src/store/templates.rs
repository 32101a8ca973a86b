//! `templates`: sealed, transformed templates; never an image.

use sqlx::Row;

use super::Conn;

/// A template to store.
pub(crate) struct NewTemplate<'a> {
    pub id: &'a str,
    pub subject: &'a str,
    pub purpose: &'a str,
    pub model: &'a str,
    pub sealed: Vec<u8>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Stores a template of one of `tenant`'s subjects.
pub(crate) async fn insert(
    c: &mut Conn,
    tenant: &str,
    t: NewTemplate<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO templates (id, tenant_id, subject_id, purpose, model, sealed, created_at, \
         last_used_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(t.id)
    .bind(tenant)
    .bind(t.subject)
    .bind(t.purpose)
    .bind(t.model)
    .bind(t.sealed)
    .bind(t.created_at)
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(c)
    .await?;
    Ok(())
}

/// How many live templates a subject has: for `purpose` (or any, when `None`), made by
/// `model` (`same_model`) or by any other model (`!same_model`).
pub(crate) async fn count(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
    purpose: Option<&str>,
    model: &str,
    same_model: bool,
    at: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "SELECT COUNT(*) AS n FROM templates WHERE subject_id = $1 AND tenant_id = $2 \
         AND ($3 = '' OR purpose = $3) AND expires_at > $4 AND (model = $5) = $6",
    )
    .bind(subject)
    .bind(tenant)
    .bind(purpose.unwrap_or(""))
    .bind(at)
    .bind(model)
    .bind(same_model)
    .fetch_one(c)
    .await?
    .try_get("n")
}

/// Deletes a subject's templates for one purpose.
pub(crate) async fn delete_for_purpose(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
    purpose: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM templates WHERE subject_id = $1 AND tenant_id = $2 AND purpose = $3")
        .bind(subject)
        .bind(tenant)
        .bind(purpose)
        .execute(c)
        .await?;
    Ok(())
}

/// A template the sweep deleted.
pub(crate) struct Expired {
    pub tenant: String,
    pub id: String,
    pub purpose: String,
}

/// Deletes every template of every tenant whose retention ended at or before `at` (the
/// retention sweep, a maintenance job with no read path) and says which.
pub(crate) async fn delete_expired(c: &mut Conn, at: i64) -> Result<Vec<Expired>, sqlx::Error> {
    sqlx::query("DELETE FROM templates WHERE expires_at <= $1 RETURNING tenant_id, id, purpose")
        .bind(at)
        .fetch_all(c)
        .await?
        .into_iter()
        .map(|r| {
            Ok(Expired {
                tenant: r.try_get("tenant_id")?,
                id: r.try_get("id")?,
                purpose: r.try_get("purpose")?,
            })
        })
        .collect()
}

/// A live access template with its subject's wrapped data key, ready to open.
pub(crate) struct AccessRow {
    pub id: String,
    pub subject: String,
    pub sealed: Vec<u8>,
    pub wrapped: Vec<u8>,
}

/// `tenant`'s live access templates of `model` whose subjects have an active access consent
/// (all of them, or only the template `only`).
pub(crate) async fn live_access(
    c: &mut Conn,
    tenant: &str,
    only: Option<&str>,
    model: &str,
    at: i64,
) -> Result<Vec<AccessRow>, sqlx::Error> {
    sqlx::query(
        "SELECT t.id, t.subject_id, t.sealed, k.wrapped FROM templates t \
         JOIN data_keys k ON k.subject_id = t.subject_id \
         WHERE t.tenant_id = $1 AND t.purpose = 'access' AND t.expires_at > $2 \
         AND ($3 = '' OR t.id = $3) AND t.model = $4 \
         AND EXISTS (SELECT 1 FROM consents c WHERE c.tenant_id = t.tenant_id \
         AND c.subject_id = t.subject_id AND c.purpose = 'access' AND c.withdrawn_at IS NULL)",
    )
    .bind(tenant)
    .bind(at)
    .bind(only.unwrap_or(""))
    .bind(model)
    .fetch_all(c)
    .await?
    .into_iter()
    .map(|r| {
        Ok(AccessRow {
            id: r.try_get("id")?,
            subject: r.try_get("subject_id")?,
            sealed: r.try_get("sealed")?,
            wrapped: r.try_get("wrapped")?,
        })
    })
    .collect()
}

/// A live template's `last_used_at`, if the template is still live for access (not expired,
/// its subject's access consent active).
pub(crate) async fn access_last_used(
    c: &mut Conn,
    tenant: &str,
    template: &str,
    at: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query(
        "SELECT t.last_used_at FROM templates t WHERE t.id = $1 AND t.tenant_id = $2 \
         AND t.expires_at > $3 \
         AND EXISTS (SELECT 1 FROM consents c WHERE c.tenant_id = t.tenant_id \
         AND c.subject_id = t.subject_id AND c.purpose = 'access' AND c.withdrawn_at IS NULL)",
    )
    .bind(template)
    .bind(tenant)
    .bind(at)
    .fetch_optional(c)
    .await?
    .map(|r| r.try_get("last_used_at"))
    .transpose()
}

/// A live verification template.
pub(crate) struct VerificationRow {
    pub id: String,
    pub sealed: Vec<u8>,
    pub last_used_at: i64,
}

/// A subject's live verification templates of `model`, when its verification consent is active.
pub(crate) async fn live_verification(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
    model: &str,
    at: i64,
) -> Result<Vec<VerificationRow>, sqlx::Error> {
    sqlx::query(
        "SELECT t.id, t.sealed, t.last_used_at FROM templates t \
         WHERE t.tenant_id = $1 AND t.subject_id = $2 \
         AND t.purpose = 'verification' AND t.expires_at > $3 AND t.model = $4 \
         AND EXISTS (SELECT 1 FROM consents c \
         WHERE c.tenant_id = t.tenant_id AND c.subject_id = t.subject_id \
         AND c.purpose = 'verification' AND c.withdrawn_at IS NULL) \
         ORDER BY t.created_at DESC, t.id",
    )
    .bind(tenant)
    .bind(subject)
    .bind(at)
    .bind(model)
    .fetch_all(c)
    .await?
    .into_iter()
    .map(|r| {
        Ok(VerificationRow {
            id: r.try_get("id")?,
            sealed: r.try_get("sealed")?,
            last_used_at: r.try_get("last_used_at")?,
        })
    })
    .collect()
}

/// Restarts a template's retention period from `at`, unless another node did since
/// `last_used` was read.
pub(crate) async fn touch(
    c: &mut Conn,
    tenant: &str,
    template: &str,
    last_used: i64,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE templates SET expires_at = $1 + (expires_at - last_used_at), last_used_at = $1 \
         WHERE id = $2 AND tenant_id = $3 AND last_used_at = $4 AND expires_at > $1",
    )
    .bind(at)
    .bind(template)
    .bind(tenant)
    .bind(last_used)
    .execute(c)
    .await?;
    Ok(())
}
