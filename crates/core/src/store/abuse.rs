//! What the abuse rules read: `key_networks`, and counts over `audit_entries` by actor.

use sqlx::Row;

use super::Conn;

/// The networks `key` was used from.
pub(crate) async fn networks(
    c: &mut Conn,
    tenant: &str,
    key: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT network FROM key_networks WHERE tenant_id = $1 AND key_id = $2")
        .bind(tenant)
        .bind(key)
        .fetch_all(c)
        .await?;
    rows.iter().map(|r| r.try_get("network")).collect()
}

/// Remembers that `key` was used from `network`.
pub(crate) async fn add_network(
    c: &mut Conn,
    tenant: &str,
    key: &str,
    network: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO key_networks (tenant_id, key_id, network, first_seen) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, key_id, network) DO NOTHING",
    )
    .bind(tenant)
    .bind(key)
    .bind(network)
    .bind(at)
    .execute(c)
    .await?;
    Ok(())
}

/// Distinct subject records `key` read in `since..until`, and in how many distinct hours.
pub(crate) async fn distinct_reads_between(
    c: &mut Conn,
    tenant: &str,
    key: &str,
    since: i64,
    until: i64,
) -> Result<(i64, i64), sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(DISTINCT target) AS n, COUNT(DISTINCT at / 3600) AS h FROM audit_entries \
         WHERE tenant_id = $1 AND actor_key = $2 AND action = 'subject.read' AND at >= $3 AND at < $4",
    )
    .bind(tenant)
    .bind(key)
    .bind(since)
    .bind(until)
    .fetch_one(c)
    .await?;
    Ok((row.try_get("n")?, row.try_get("h")?))
}

/// Audit entries attributed to `key` in `since..until`, counted up to `cap` (the per-request
/// rule needs to know only whether the cap is reached, so a busy key's minute is never
/// counted past it; the daily baseline passes `i64::MAX`).
pub(crate) async fn actions_between(
    c: &mut Conn,
    tenant: &str,
    key: &str,
    since: i64,
    until: i64,
    cap: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM audit_entries WHERE tenant_id = $1 \
         AND actor_key = $2 AND at >= $3 AND at < $4 LIMIT $5) AS recent",
    )
    .bind(tenant)
    .bind(key)
    .bind(since)
    .bind(until)
    .bind(cap)
    .fetch_one(c)
    .await?
    .try_get("n")
}

/// Distinct subject records `key` read in `since..until`, counted up to `cap` (through the
/// index on actor and action, so other actions are never scanned).
pub(crate) async fn distinct_reads_capped(
    c: &mut Conn,
    tenant: &str,
    key: &str,
    since: i64,
    until: i64,
    cap: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "SELECT COUNT(*) AS n FROM (SELECT DISTINCT target FROM audit_entries WHERE tenant_id = $1 \
         AND actor_key = $2 AND action = 'subject.read' AND at >= $3 AND at < $4 LIMIT $5) AS reads",
    )
    .bind(tenant)
    .bind(key)
    .bind(since)
    .bind(until)
    .bind(cap)
    .fetch_one(c)
    .await?
    .try_get("n")
}
