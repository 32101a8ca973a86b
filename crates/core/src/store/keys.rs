//! `api_keys`: stored as SHA-256 hashes only.

use sqlx::Row;

use super::Conn;

/// A stored key, found by its hash.
pub(crate) struct KeyRow {
    pub id: String,
    pub tenant: String,
    pub role: String,
    pub key_hash: Vec<u8>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Adds a key of `tenant`.
pub(crate) async fn insert(
    c: &mut Conn,
    tenant: &str,
    id: &str,
    role: &str,
    hash: &[u8],
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, role, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(tenant)
    .bind(role)
    .bind(hash.to_vec())
    .bind(at)
    .execute(c)
    .await?;
    Ok(())
}

/// The key with this hash, of any tenant: authentication is how a request learns its tenant.
pub(crate) async fn by_hash(c: &mut Conn, hash: &[u8]) -> Result<Option<KeyRow>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT id, tenant_id, role, key_hash, expires_at, revoked_at FROM api_keys WHERE key_hash = $1",
    )
    .bind(hash.to_vec())
    .fetch_optional(c)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(KeyRow {
        id: row.try_get("id")?,
        tenant: row.try_get("tenant_id")?,
        role: row.try_get("role")?,
        key_hash: row.try_get("key_hash")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    }))
}
