//! `links` (scoped, short-lived links) and `subject_tokens` (the person's own token), both
//! stored as SHA-256 hashes of the token.

use sqlx::Row;

use super::Conn;

/// A stored link.
pub(crate) struct LinkRow {
    pub id: String,
    pub key_id: String,
    pub action: String,
    pub subject: String,
    pub purpose: String,
    pub expires_at: i64,
}

/// A new link's row.
pub(crate) struct NewLink<'a> {
    pub id: &'a str,
    pub hash: &'a [u8],
    pub key_id: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub purpose: &'a str,
    pub at: i64,
    pub expires_at: i64,
}

/// Adds a link of `tenant`.
pub(crate) async fn insert(c: &mut Conn, tenant: &str, l: NewLink<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO links (id, tenant_id, token_hash, key_id, action, subject_id, purpose, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(l.id)
    .bind(tenant)
    .bind(l.hash.to_vec())
    .bind(l.key_id)
    .bind(l.action)
    .bind(l.subject)
    .bind(l.purpose)
    .bind(l.at)
    .bind(l.expires_at)
    .execute(c)
    .await?;
    Ok(())
}

/// `tenant`'s link with this token hash.
pub(crate) async fn by_hash(
    c: &mut Conn,
    tenant: &str,
    hash: &[u8],
) -> Result<Option<LinkRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, key_id, action, subject_id, purpose, expires_at FROM links WHERE tenant_id = $1 AND token_hash = $2",
    )
    .bind(tenant)
    .bind(hash.to_vec())
    .fetch_optional(c)
    .await?;
    row.map(|r| {
        Ok(LinkRow {
            id: r.try_get("id")?,
            key_id: r.try_get("key_id")?,
            action: r.try_get("action")?,
            subject: r.try_get("subject_id")?,
            purpose: r.try_get("purpose")?,
            expires_at: r.try_get("expires_at")?,
        })
    })
    .transpose()
}

/// Gives `subject` a new token (replacing any earlier one).
pub(crate) async fn set_subject_token(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
    hash: &[u8],
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM subject_tokens WHERE tenant_id = $1 AND subject_id = $2")
        .bind(tenant)
        .bind(subject)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO subject_tokens (subject_id, tenant_id, token_hash, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(subject)
    .bind(tenant)
    .bind(hash.to_vec())
    .bind(at)
    .execute(c)
    .await?;
    Ok(())
}

/// Whether `subject` has a token.
pub(crate) async fn has_subject_token(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("SELECT 1 AS one FROM subject_tokens WHERE tenant_id = $1 AND subject_id = $2")
            .bind(tenant)
            .bind(subject)
            .fetch_optional(c)
            .await?
            .is_some(),
    )
}

/// The tenant and subject a person's token belongs to.
pub(crate) async fn subject_by_token(
    c: &mut Conn,
    hash: &[u8],
) -> Result<Option<(String, String)>, sqlx::Error> {
    let row = sqlx::query("SELECT tenant_id, subject_id FROM subject_tokens WHERE token_hash = $1")
        .bind(hash.to_vec())
        .fetch_optional(c)
        .await?;
    row.map(|r| Ok((r.try_get("tenant_id")?, r.try_get("subject_id")?)))
        .transpose()
}
