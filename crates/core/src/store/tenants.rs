//! `tenants`.

use sqlx::Row;

use super::Conn;

/// The id of the tenant with this name.
pub(crate) async fn id_by_name(c: &mut Conn, name: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query("SELECT id FROM tenants WHERE name = $1")
        .bind(name)
        .fetch_optional(c)
        .await?
        .map(|r| r.try_get("id"))
        .transpose()
}

/// Whether a tenant with this id exists.
pub(crate) async fn exists(c: &mut Conn, id: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("SELECT 1 AS one FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await?
        .is_some())
}

/// Adds a tenant.
pub(crate) async fn insert(
    c: &mut Conn,
    id: &str,
    name: &str,
    kek_id: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO tenants (id, name, kek_id, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(name)
        .bind(kek_id)
        .bind(at)
        .execute(c)
        .await?;
    Ok(())
}

/// Every tenant's id (for the maintenance jobs' log entries, one per tenant).
pub(crate) async fn all_ids(c: &mut Conn) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query("SELECT id FROM tenants ORDER BY id")
        .fetch_all(c)
        .await?
        .into_iter()
        .map(|r| r.try_get("id"))
        .collect()
}

/// The generation of the tenant's template transform.
pub(crate) async fn transform_gen(c: &mut Conn, id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT transform_gen FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await?
        .map_or(Ok(0), |r| r.try_get("transform_gen"))
}

/// What a decision needs of its tenant, in one read.
pub(crate) struct DecisionSettings {
    /// The generation of the tenant's template transform.
    pub generation: i64,
    /// Whether the purpose needs a liveness result.
    pub liveness: bool,
    /// The purpose's modality policy, when one was set.
    pub modality: Option<String>,
}

/// What a decision for `purpose` needs of its tenant, in one read: the transform's generation,
/// whether the purpose needs a liveness result, and its modality policy.
pub(crate) async fn decision_settings(
    c: &mut Conn,
    id: &str,
    purpose: &str,
) -> Result<DecisionSettings, sqlx::Error> {
    let row = sqlx::query(
        "SELECT t.transform_gen, COALESCE(p.required, 0) AS required, m.modality FROM tenants t \
         LEFT JOIN liveness_policy p ON p.tenant_id = t.id AND p.purpose = $2 \
         LEFT JOIN modality_policy m ON m.tenant_id = t.id AND m.purpose = $2 WHERE t.id = $1",
    )
    .bind(id)
    .bind(purpose)
    .fetch_optional(c)
    .await?;
    match row {
        Some(r) => Ok(DecisionSettings {
            generation: r.try_get("transform_gen")?,
            liveness: r.try_get::<i64, _>("required")? == 1,
            modality: r.try_get("modality")?,
        }),
        None => Ok(DecisionSettings {
            generation: 0,
            liveness: false,
            modality: None,
        }),
    }
}

/// Moves the tenant's transform to the next generation; returns it.
pub(crate) async fn next_transform_gen(c: &mut Conn, id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query("UPDATE tenants SET transform_gen = transform_gen + 1 WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    transform_gen(c, id).await
}
