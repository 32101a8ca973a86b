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
         last_used_at, expires_at, envelope) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
    .bind(i64::from(consentry_vault::TEMPLATE_VERSION))
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
    pub subject: String,
    pub id: String,
    pub purpose: String,
}

/// Deletes every template of every tenant whose retention ended at or before `at` (the
/// retention sweep, a maintenance job with no read path) and says which.
pub(crate) async fn delete_expired(c: &mut Conn, at: i64) -> Result<Vec<Expired>, sqlx::Error> {
    sqlx::query(
        "DELETE FROM templates WHERE expires_at <= $1 RETURNING tenant_id, subject_id, id, purpose",
    )
    .bind(at)
    .fetch_all(c)
    .await?
    .into_iter()
    .map(|r| {
        Ok(Expired {
            tenant: r.try_get("tenant_id")?,
            subject: r.try_get("subject_id")?,
            id: r.try_get("id")?,
            purpose: r.try_get("purpose")?,
        })
    })
    .collect()
}

/// A template's row: what opening it needs (its sealed bytes and every column its envelope
/// binds).
pub(crate) struct TemplateRow {
    pub id: String,
    pub subject: String,
    pub purpose: String,
    pub model: String,
    pub sealed: Vec<u8>,
    pub last_used_at: i64,
    pub expires_at: i64,
}

impl TemplateRow {
    fn read(r: &sqlx::any::AnyRow) -> Result<TemplateRow, sqlx::Error> {
        Ok(TemplateRow {
            id: r.try_get("id")?,
            subject: r.try_get("subject_id")?,
            purpose: r.try_get("purpose")?,
            model: r.try_get("model")?,
            sealed: r.try_get("sealed")?,
            last_used_at: r.try_get("last_used_at")?,
            expires_at: r.try_get("expires_at")?,
        })
    }

    /// What the envelope is bound to.
    pub(crate) fn context<'a>(&'a self, tenant: &'a str) -> consentry_vault::TemplateContext<'a> {
        consentry_vault::TemplateContext {
            tenant,
            subject: &self.subject,
            template: &self.id,
            purpose: &self.purpose,
            model: &self.model,
            last_used_at: self.last_used_at,
            expires_at: self.expires_at,
        }
    }
}

const COLUMNS: &str =
    "t.id, t.subject_id, t.purpose, t.model, t.sealed, t.last_used_at, t.expires_at";

/// A live access template with its subject's wrapped data key, ready to open.
pub(crate) struct AccessRow {
    pub row: TemplateRow,
    pub kek_id: String,
    pub wrapped: Vec<u8>,
}

impl AccessRow {
    fn read(r: &sqlx::any::AnyRow) -> Result<AccessRow, sqlx::Error> {
        Ok(AccessRow {
            row: TemplateRow::read(r)?,
            kek_id: r.try_get("kek_id")?,
            wrapped: r.try_get("wrapped")?,
        })
    }
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
    sqlx::query(&format!(
        "SELECT {COLUMNS}, k.kek_id, k.wrapped FROM templates t \
         JOIN data_keys k ON k.subject_id = t.subject_id \
         WHERE t.tenant_id = $1 AND t.purpose = 'access' AND t.expires_at > $2 \
         AND ($3 = '' OR t.id = $3) AND t.model = $4 \
         AND EXISTS (SELECT 1 FROM consents c WHERE c.tenant_id = t.tenant_id \
         AND c.subject_id = t.subject_id AND c.purpose = 'access' AND c.withdrawn_at IS NULL)"
    ))
    .bind(tenant)
    .bind(at)
    .bind(only.unwrap_or(""))
    .bind(model)
    .fetch_all(c)
    .await?
    .into_iter()
    .map(|r| AccessRow::read(&r))
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

/// A subject's live templates of `model` for `purpose`, when its consent for that purpose is
/// active, newest first.
pub(crate) async fn live_of_subject(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
    purpose: &str,
    model: &str,
    at: i64,
) -> Result<Vec<TemplateRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM templates t \
         WHERE t.tenant_id = $1 AND t.subject_id = $2 \
         AND t.purpose = $5 AND t.expires_at > $3 AND t.model = $4 \
         AND EXISTS (SELECT 1 FROM consents c \
         WHERE c.tenant_id = t.tenant_id AND c.subject_id = t.subject_id \
         AND c.purpose = $5 AND c.withdrawn_at IS NULL) \
         ORDER BY t.created_at DESC, t.id"
    ))
    .bind(tenant)
    .bind(subject)
    .bind(at)
    .bind(model)
    .bind(purpose)
    .fetch_all(c)
    .await?
    .into_iter()
    .map(|r| TemplateRow::read(&r))
    .collect()
}

/// One of `tenant`'s templates, whatever its state.
pub(crate) async fn one(
    c: &mut Conn,
    tenant: &str,
    template: &str,
) -> Result<Option<TemplateRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM templates t WHERE t.id = $1 AND t.tenant_id = $2"
    ))
    .bind(template)
    .bind(tenant)
    .fetch_optional(c)
    .await?
    .map(|r| TemplateRow::read(&r))
    .transpose()
}

/// Every template of one of `tenant`'s subjects, whatever its state (to re-seal them under a
/// new data key).
pub(crate) async fn of_subject(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
) -> Result<Vec<(TemplateRow, i64)>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS}, t.envelope FROM templates t WHERE t.subject_id = $1 AND t.tenant_id = $2"
    ))
    .bind(subject)
    .bind(tenant)
    .fetch_all(c)
    .await?
    .into_iter()
    .map(|r| Ok((TemplateRow::read(&r)?, r.try_get("envelope")?)))
    .collect()
}

/// Subjects (with their tenants) that still have templates in version-1 envelopes, at most
/// `limit` (maintenance at start-up, over every tenant).
pub(crate) async fn subjects_with_v1(
    c: &mut Conn,
    limit: i64,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query(
        "SELECT DISTINCT tenant_id, subject_id FROM templates WHERE envelope = 1 \
         ORDER BY subject_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(c)
    .await?
    .into_iter()
    .map(|r| Ok((r.try_get("tenant_id")?, r.try_get("subject_id")?)))
    .collect()
}

/// Replaces a template's envelope (same columns, new sealed bytes) when it still has the
/// sealed bytes that were read.
pub(crate) async fn reseal(
    c: &mut Conn,
    tenant: &str,
    template: &str,
    old: &[u8],
    sealed: Vec<u8>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE templates SET sealed = $1, envelope = $2 \
         WHERE id = $3 AND tenant_id = $4 AND sealed = $5",
    )
    .bind(sealed)
    .bind(i64::from(consentry_vault::TEMPLATE_VERSION))
    .bind(template)
    .bind(tenant)
    .bind(old)
    .execute(c)
    .await?;
    Ok(())
}

/// Restarts a template's retention period: new `last_used_at` and `expires_at`, and the
/// envelope sealed over them, unless the row changed since it was read (`old` sealed bytes).
pub(crate) async fn touch(
    c: &mut Conn,
    tenant: &str,
    template: &str,
    old: &[u8],
    sealed: Vec<u8>,
    last_used_at: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE templates SET sealed = $1, last_used_at = $2, expires_at = $3 \
         WHERE id = $4 AND tenant_id = $5 AND sealed = $6",
    )
    .bind(sealed)
    .bind(last_used_at)
    .bind(expires_at)
    .bind(template)
    .bind(tenant)
    .bind(old)
    .execute(c)
    .await?;
    Ok(())
}

/// Every template of `tenant`, with its subject's wrapped data key (to re-transform them).
pub(crate) async fn of_tenant(c: &mut Conn, tenant: &str) -> Result<Vec<AccessRow>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS}, k.kek_id, k.wrapped FROM templates t \
         JOIN data_keys k ON k.subject_id = t.subject_id WHERE t.tenant_id = $1 \
         ORDER BY t.subject_id"
    ))
    .bind(tenant)
    .fetch_all(c)
    .await?
    .into_iter()
    .map(|r| AccessRow::read(&r))
    .collect()
}
