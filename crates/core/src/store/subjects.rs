//! `subjects`.

use sqlx::Row;

use super::Conn;

/// Adds a subject to `tenant`.
pub(crate) async fn insert(
    c: &mut Conn,
    tenant: &str,
    id: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO subjects (id, tenant_id, created_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(tenant)
        .bind(at)
        .execute(c)
        .await?;
    Ok(())
}

/// When the subject was created, if it is one of `tenant`'s.
pub(crate) async fn created_at(
    c: &mut Conn,
    tenant: &str,
    id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query("SELECT created_at FROM subjects WHERE id = $1 AND tenant_id = $2")
        .bind(id)
        .bind(tenant)
        .fetch_optional(c)
        .await?
        .map(|r| r.try_get("created_at"))
        .transpose()
}

/// Deletes the subject (its consents, templates and credentials go with it by cascade);
/// returns whether it existed in `tenant`.
pub(crate) async fn delete(c: &mut Conn, tenant: &str, id: &str) -> Result<bool, sqlx::Error> {
    let gone = sqlx::query("DELETE FROM subjects WHERE id = $1 AND tenant_id = $2")
        .bind(id)
        .bind(tenant)
        .execute(c)
        .await?
        .rows_affected();
    Ok(gone > 0)
}

/// The newest `limit` subjects of `tenant`: id and creation time.
pub(crate) async fn newest(
    c: &mut Conn,
    tenant: &str,
    limit: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query(
        "SELECT id, created_at FROM subjects WHERE tenant_id = $1 \
         ORDER BY created_at DESC, id LIMIT $2",
    )
    .bind(tenant)
    .bind(limit)
    .fetch_all(c)
    .await?
    .into_iter()
    .map(|r| Ok((r.try_get("id")?, r.try_get("created_at")?)))
    .collect()
}
