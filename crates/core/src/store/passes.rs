//! `pass_keys`, `passes`, `pass_revocations`, `checkins`.

use sqlx::Row;

use super::Conn;

/// A pass as stored: its claims, never the signed text.
pub(crate) struct PassRow {
    pub subject: String,
    pub epoch: i64,
    pub alg: String,
    pub access: String,
    pub verifier: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// The current signing epoch of `tenant`, if it has one yet (a read).
pub(crate) async fn live_epoch(c: &mut Conn, tenant: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query(
        "SELECT epoch FROM pass_keys WHERE tenant_id = $1 AND retired_at IS NULL ORDER BY epoch DESC LIMIT 1",
    )
    .bind(tenant)
    .fetch_optional(c)
    .await?
    .map(|r| r.try_get("epoch"))
    .transpose()
}

/// The current signing epoch of `tenant`, creating epoch 1 on first use (in a write
/// transaction).
pub(crate) async fn current_epoch(c: &mut Conn, tenant: &str, at: i64) -> Result<i64, sqlx::Error> {
    if let Some(e) = live_epoch(&mut *c, tenant).await? {
        return Ok(e);
    }
    sqlx::query(
        "INSERT INTO pass_keys (tenant_id, epoch, created_at) VALUES ($1, 1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(at)
    .execute(c)
    .await?;
    Ok(1)
}

/// Retires the current epoch and starts the next; returns the new epoch.
pub(crate) async fn rotate(c: &mut Conn, tenant: &str, at: i64) -> Result<i64, sqlx::Error> {
    let current = current_epoch(c, tenant, at).await?;
    sqlx::query("UPDATE pass_keys SET retired_at = $1 WHERE tenant_id = $2 AND epoch = $3")
        .bind(at)
        .bind(tenant)
        .bind(current)
        .execute(&mut *c)
        .await?;
    sqlx::query("INSERT INTO pass_keys (tenant_id, epoch, created_at) VALUES ($1, $2, $3)")
        .bind(tenant)
        .bind(current + 1)
        .bind(at)
        .execute(c)
        .await?;
    Ok(current + 1)
}

/// The epochs whose keys a verifier still needs: the current one, and every retired one with
/// a pass that has not expired. Newest first.
pub(crate) async fn trusted_epochs(
    c: &mut Conn,
    tenant: &str,
    at: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT k.epoch FROM pass_keys k WHERE k.tenant_id = $1 AND (k.retired_at IS NULL OR EXISTS \
         (SELECT 1 FROM passes p WHERE p.tenant_id = k.tenant_id AND p.epoch = k.epoch AND p.expires_at > $2)) \
         ORDER BY k.epoch DESC",
    )
    .bind(tenant)
    .bind(at)
    .fetch_all(c)
    .await?;
    rows.iter().map(|r| r.try_get("epoch")).collect()
}

/// Adds a pass.
pub(crate) async fn insert(
    c: &mut Conn,
    tenant: &str,
    id: &str,
    p: &PassRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO passes (id, tenant_id, subject_id, epoch, alg, access, verifier, issued_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(tenant)
    .bind(&p.subject)
    .bind(p.epoch)
    .bind(&p.alg)
    .bind(&p.access)
    .bind(&p.verifier)
    .bind(p.issued_at)
    .bind(p.expires_at)
    .execute(c)
    .await?;
    Ok(())
}

/// `tenant`'s pass `id` of `subject`.
pub(crate) async fn get(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
    id: &str,
) -> Result<Option<PassRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT subject_id, epoch, alg, access, verifier, issued_at, expires_at, revoked_at FROM passes \
         WHERE id = $1 AND tenant_id = $2 AND subject_id = $3",
    )
    .bind(id)
    .bind(tenant)
    .bind(subject)
    .fetch_optional(c)
    .await?;
    row.map(|r| {
        Ok(PassRow {
            subject: r.try_get("subject_id")?,
            epoch: r.try_get("epoch")?,
            alg: r.try_get("alg")?,
            access: r.try_get("access")?,
            verifier: r.try_get("verifier")?,
            issued_at: r.try_get("issued_at")?,
            expires_at: r.try_get("expires_at")?,
            revoked_at: r.try_get("revoked_at")?,
        })
    })
    .transpose()
}

/// The ids and expiries of `subject`'s passes that are neither revoked nor expired.
pub(crate) async fn live_of_subject(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
    at: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, expires_at FROM passes WHERE tenant_id = $1 AND subject_id = $2 \
         AND revoked_at IS NULL AND expires_at > $3",
    )
    .bind(tenant)
    .bind(subject)
    .bind(at)
    .fetch_all(c)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("expires_at")?)))
        .collect()
}

/// Marks a pass revoked and adds its hash to the tenant's revocations.
pub(crate) async fn revoke(
    c: &mut Conn,
    tenant: &str,
    id: &str,
    hash: &[u8],
    expires_at: i64,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE passes SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(id)
    .bind(tenant)
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "INSERT INTO pass_revocations (tenant_id, hash, expires_at, revoked_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(hash.to_vec())
    .bind(expires_at)
    .bind(at)
    .execute(c)
    .await?;
    Ok(())
}

/// The revocations of passes still unexpired at `at`, and how many revocations the tenant has
/// ever made (the list's version).
pub(crate) async fn revocations(
    c: &mut Conn,
    tenant: &str,
    at: i64,
) -> Result<(Vec<Vec<u8>>, i64), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT hash FROM pass_revocations WHERE tenant_id = $1 AND expires_at > $2 ORDER BY hash",
    )
    .bind(tenant)
    .bind(at)
    .fetch_all(&mut *c)
    .await?;
    let hashes = rows
        .iter()
        .map(|r| r.try_get("hash"))
        .collect::<Result<Vec<Vec<u8>>, _>>()?;
    let version: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM pass_revocations WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_one(c)
            .await?
            .try_get("n")?;
    Ok((hashes, version))
}

/// Records a check-in.
pub(crate) async fn check_in(
    c: &mut Conn,
    tenant: &str,
    id: &str,
    venue: &str,
    pseudonym: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO checkins (id, tenant_id, venue, pseudonym, at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(tenant)
    .bind(venue)
    .bind(pseudonym)
    .bind(at)
    .execute(c)
    .await?;
    Ok(())
}

/// Deletes every check-in made before `before` (all tenants); how many, per tenant.
pub(crate) async fn sweep_checkins(
    c: &mut Conn,
    before: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT tenant_id, COUNT(*) AS n FROM checkins WHERE at < $1 GROUP BY tenant_id ORDER BY tenant_id",
    )
    .bind(before)
    .fetch_all(&mut *c)
    .await?;
    let counts = rows
        .iter()
        .map(|r| Ok((r.try_get("tenant_id")?, r.try_get("n")?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    sqlx::query("DELETE FROM checkins WHERE at < $1")
        .bind(before)
        .execute(c)
        .await?;
    Ok(counts)
}
