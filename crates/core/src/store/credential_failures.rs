//! `credential_failures`: failed card/PIN decisions per API key, for the guessing limit. Holds
//! no card number and no PIN: only which key failed, and when.

use sqlx::Row;

use super::Conn;

/// Records a failure of `key` and forgets that key's failures older than `forget_before`.
pub(crate) async fn record(
    c: &mut Conn,
    tenant: &str,
    key: &str,
    at: i64,
    forget_before: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM credential_failures WHERE tenant_id = $1 AND key_id = $2 AND at < $3")
        .bind(tenant)
        .bind(key)
        .bind(forget_before)
        .execute(&mut *c)
        .await?;
    sqlx::query("INSERT INTO credential_failures (tenant_id, key_id, at) VALUES ($1, $2, $3)")
        .bind(tenant)
        .bind(key)
        .bind(at)
        .execute(c)
        .await?;
    Ok(())
}

/// How many failures `key` had since `since`.
pub(crate) async fn by_key_since(
    c: &mut Conn,
    tenant: &str,
    key: &str,
    since: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "SELECT COUNT(*) AS n FROM credential_failures WHERE tenant_id = $1 AND key_id = $2 AND at >= $3",
    )
    .bind(tenant)
    .bind(key)
    .bind(since)
    .fetch_one(c)
    .await?
    .try_get("n")
}

/// How many failures all of `tenant`'s keys had since `since`.
pub(crate) async fn by_tenant_since(
    c: &mut Conn,
    tenant: &str,
    since: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM credential_failures WHERE tenant_id = $1 AND at >= $2")
        .bind(tenant)
        .bind(since)
        .fetch_one(c)
        .await?
        .try_get("n")
}
