//! `credentials`: cards and PINs, stored as keyed HMACs only.

use sqlx::Row;

use super::Conn;

/// Whether `tenant` already has a credential with this lookup value.
pub(crate) async fn taken(c: &mut Conn, tenant: &str, lookup: &[u8]) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("SELECT id FROM credentials WHERE tenant_id = $1 AND lookup = $2")
            .bind(tenant)
            .bind(lookup.to_vec())
            .fetch_optional(c)
            .await?
            .is_some(),
    )
}

/// Stores a credential of one of `tenant`'s subjects.
pub(crate) async fn insert(
    c: &mut Conn,
    tenant: &str,
    id: &str,
    subject: &str,
    kind: &str,
    lookup: &[u8],
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO credentials (id, tenant_id, subject_id, kind, lookup, secret_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(tenant)
    .bind(subject)
    .bind(kind)
    .bind(lookup.to_vec())
    .bind(lookup.to_vec())
    .bind(at)
    .execute(c)
    .await?;
    Ok(())
}

/// The subject holding a credential of this kind and lookup value.
pub(crate) async fn subject_by_lookup(
    c: &mut Conn,
    tenant: &str,
    kind: &str,
    lookup: &[u8],
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query(
        "SELECT subject_id FROM credentials WHERE tenant_id = $1 AND lookup = $2 AND kind = $3",
    )
    .bind(tenant)
    .bind(lookup.to_vec())
    .bind(kind)
    .fetch_optional(c)
    .await?
    .map(|r| r.try_get("subject_id"))
    .transpose()
}

/// A subject's credentials: id, kind, created (never the lookup value).
pub(crate) async fn of_subject(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query(
        "SELECT id, kind, created_at FROM credentials WHERE tenant_id = $1 AND subject_id = $2 \
         ORDER BY created_at, id",
    )
    .bind(tenant)
    .bind(subject)
    .fetch_all(c)
    .await?
    .into_iter()
    .map(|r| {
        Ok((
            r.try_get("id")?,
            r.try_get("kind")?,
            r.try_get("created_at")?,
        ))
    })
    .collect()
}
