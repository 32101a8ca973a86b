//! `liveness_challenges`, `liveness_policy`.

use sqlx::Row;

use super::Conn;

/// A challenge to store.
pub(crate) struct NewChallenge<'a> {
    pub id: &'a str,
    pub key: &'a str,
    pub subject: &'a str,
    pub actions: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

pub(crate) async fn insert(
    c: &mut Conn,
    tenant: &str,
    n: NewChallenge<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO liveness_challenges (id, tenant_id, key_id, subject_id, actions, created_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(n.id)
    .bind(tenant)
    .bind(n.key)
    .bind(n.subject)
    .bind(n.actions)
    .bind(n.created_at)
    .bind(n.expires_at)
    .execute(c)
    .await?;
    Ok(())
}

/// Marks the challenge answered if it is `key`'s, unanswered and unexpired; returns its subject
/// and actions (the answer is taken once, whatever the frames show).
pub(crate) async fn take(
    c: &mut Conn,
    tenant: &str,
    id: &str,
    key: &str,
    at: i64,
) -> Result<Option<(String, String, i64)>, sqlx::Error> {
    let taken = sqlx::query(
        "UPDATE liveness_challenges SET answered_at = $1 WHERE id = $2 AND tenant_id = $3 \
         AND key_id = $4 AND answered_at IS NULL AND expires_at > $1",
    )
    .bind(at)
    .bind(id)
    .bind(tenant)
    .bind(key)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if taken == 0 {
        return Ok(None);
    }
    sqlx::query("SELECT subject_id, actions, created_at FROM liveness_challenges WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await?
        .map(|r| {
            Ok((
                r.try_get("subject_id")?,
                r.try_get("actions")?,
                r.try_get("created_at")?,
            ))
        })
        .transpose()
}

/// Records the outcome; a pass keeps the sealed face until the token is used or expires.
pub(crate) async fn record(
    c: &mut Conn,
    id: &str,
    passed: bool,
    probe: Option<Vec<u8>>,
    token_expires_at: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE liveness_challenges SET passed = $1, probe = $2, token_expires_at = $3 WHERE id = $4",
    )
    .bind(i64::from(passed))
    .bind(probe)
    .bind(token_expires_at)
    .bind(id)
    .execute(c)
    .await?;
    Ok(())
}

/// Uses a passed challenge's token: once, by the same key, for the same subject, before it
/// expires. Returns the sealed face, which leaves the database in the same statement's
/// transaction.
pub(crate) async fn use_token(
    c: &mut Conn,
    tenant: &str,
    id: &str,
    key: &str,
    subject: &str,
    at: i64,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    let probe: Option<Option<Vec<u8>>> = sqlx::query(
        "SELECT probe FROM liveness_challenges WHERE id = $1 AND tenant_id = $2 AND key_id = $3 \
         AND subject_id = $4 AND passed = 1 AND token_used_at IS NULL AND token_expires_at > $5",
    )
    .bind(id)
    .bind(tenant)
    .bind(key)
    .bind(subject)
    .bind(at)
    .fetch_optional(&mut *c)
    .await?
    .map(|r| r.try_get("probe"))
    .transpose()?;
    let Some(Some(probe)) = probe else {
        return Ok(None);
    };
    sqlx::query("UPDATE liveness_challenges SET token_used_at = $1, probe = NULL WHERE id = $2")
        .bind(at)
        .bind(id)
        .execute(c)
        .await?;
    Ok(Some(probe))
}

/// Deletes challenges past their deadline and tokens past their expiry (the sweep), with the
/// faces they held.
pub(crate) async fn sweep(c: &mut Conn, at: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM liveness_challenges WHERE expires_at <= $1 \
         AND (token_expires_at IS NULL OR token_expires_at <= $1)",
    )
    .bind(at)
    .execute(c)
    .await?
    .rows_affected())
}

pub(crate) async fn set_policy(
    c: &mut Conn,
    tenant: &str,
    purpose: &str,
    required: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM liveness_policy WHERE tenant_id = $1 AND purpose = $2")
        .bind(tenant)
        .bind(purpose)
        .execute(&mut *c)
        .await?;
    sqlx::query("INSERT INTO liveness_policy (tenant_id, purpose, required) VALUES ($1, $2, $3)")
        .bind(tenant)
        .bind(purpose)
        .bind(i64::from(required))
        .execute(c)
        .await?;
    Ok(())
}

pub(crate) async fn required(
    c: &mut Conn,
    tenant: &str,
    purpose: &str,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("SELECT required FROM liveness_policy WHERE tenant_id = $1 AND purpose = $2")
            .bind(tenant)
            .bind(purpose)
            .fetch_optional(c)
            .await?
            .map(|r| r.try_get::<i64, _>("required"))
            .transpose()?
            .unwrap_or(0)
            == 1,
    )
}
