//! `api_keys`: stored as SHA-256 hashes only.

use sqlx::Row;

use super::Conn;

/// A stored key, found by its hash or listed: never the secret.
pub(crate) struct KeyRow {
    pub id: String,
    pub tenant: String,
    pub role: String,
    pub key_hash: Vec<u8>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub site: Option<String>,
    pub suspended_at: Option<i64>,
    pub suspended_reason: Option<String>,
    pub reinstated_at: Option<i64>,
}

const COLUMNS: &str = "id, tenant_id, role, key_hash, created_at, expires_at, revoked_at, site, suspended_at, suspended_reason, reinstated_at";

fn row(r: &sqlx::any::AnyRow) -> Result<KeyRow, sqlx::Error> {
    Ok(KeyRow {
        id: r.try_get("id")?,
        tenant: r.try_get("tenant_id")?,
        role: r.try_get("role")?,
        key_hash: r.try_get("key_hash")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
        site: r.try_get("site")?,
        suspended_at: r.try_get("suspended_at")?,
        suspended_reason: r.try_get("suspended_reason")?,
        reinstated_at: r.try_get("reinstated_at")?,
    })
}

/// A new key's row.
pub(crate) struct NewKey<'a> {
    pub id: &'a str,
    pub role: &'a str,
    pub hash: &'a [u8],
    pub at: i64,
    pub expires_at: Option<i64>,
    pub site: Option<&'a str>,
}

/// Adds a key of `tenant`.
pub(crate) async fn insert(c: &mut Conn, tenant: &str, k: NewKey<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, role, key_hash, created_at, expires_at, site) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(k.id)
    .bind(tenant)
    .bind(k.role)
    .bind(k.hash.to_vec())
    .bind(k.at)
    .bind(k.expires_at)
    .bind(k.site)
    .execute(c)
    .await?;
    Ok(())
}

/// The key with this hash, of any tenant: authentication is how a request learns its tenant.
pub(crate) async fn by_hash(c: &mut Conn, hash: &[u8]) -> Result<Option<KeyRow>, sqlx::Error> {
    let found = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1"
    ))
    .bind(hash.to_vec())
    .fetch_optional(c)
    .await?;
    found.as_ref().map(row).transpose()
}

/// One of `tenant`'s keys.
pub(crate) async fn get(
    c: &mut Conn,
    tenant: &str,
    id: &str,
) -> Result<Option<KeyRow>, sqlx::Error> {
    let found = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(c)
    .await?;
    found.as_ref().map(row).transpose()
}

/// Every key of `tenant`, oldest first.
pub(crate) async fn list(c: &mut Conn, tenant: &str) -> Result<Vec<KeyRow>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id"
    ))
    .bind(tenant)
    .fetch_all(c)
    .await?;
    rows.iter().map(row).collect()
}

/// Revokes a live key; false when there is none (unknown, or already revoked).
pub(crate) async fn revoke(
    c: &mut Conn,
    tenant: &str,
    id: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
    )
    .bind(tenant)
    .bind(id)
    .bind(at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Suspends a key that is not suspended yet; false when it already was (or is unknown).
pub(crate) async fn suspend(
    c: &mut Conn,
    tenant: &str,
    id: &str,
    at: i64,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE api_keys SET suspended_at = $3, suspended_reason = $4 \
         WHERE tenant_id = $1 AND id = $2 AND suspended_at IS NULL",
    )
    .bind(tenant)
    .bind(id)
    .bind(at)
    .bind(reason)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Lifts a suspension (the rules count the key's behaviour from `at` on); false when the key
/// was not suspended.
pub(crate) async fn reinstate(
    c: &mut Conn,
    tenant: &str,
    id: &str,
    at: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE api_keys SET suspended_at = NULL, suspended_reason = NULL, reinstated_at = $3 \
         WHERE tenant_id = $1 AND id = $2 AND suspended_at IS NOT NULL",
    )
    .bind(tenant)
    .bind(id)
    .bind(at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}
