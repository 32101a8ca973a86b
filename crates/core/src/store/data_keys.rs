//! `data_keys`: each subject's data key, wrapped by its tenant's KEK.

use sqlx::Row;

use super::Conn;

/// Stores a subject's wrapped data key (the subject row is `tenant`'s, created in the same
/// transaction).
pub(crate) async fn insert(
    c: &mut Conn,
    subject: &str,
    kek_id: &str,
    wrapped: Vec<u8>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO data_keys (subject_id, kek_id, wrapped) VALUES ($1, $2, $3)")
        .bind(subject)
        .bind(kek_id)
        .bind(wrapped)
        .execute(c)
        .await?;
    Ok(())
}

/// The wrapped data key of one of `tenant`'s subjects.
pub(crate) async fn wrapped(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query(
        "SELECT k.wrapped FROM data_keys k JOIN subjects s ON s.id = k.subject_id \
         WHERE s.id = $1 AND s.tenant_id = $2",
    )
    .bind(subject)
    .bind(tenant)
    .fetch_optional(c)
    .await?
    .map(|r| r.try_get("wrapped"))
    .transpose()
}

/// Destroys the data key of one of `tenant`'s subjects.
pub(crate) async fn delete(c: &mut Conn, tenant: &str, subject: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM data_keys WHERE subject_id IN (SELECT id FROM subjects WHERE id = $1 AND tenant_id = $2)",
    )
    .bind(subject)
    .bind(tenant)
    .execute(c)
    .await?;
    Ok(())
}
