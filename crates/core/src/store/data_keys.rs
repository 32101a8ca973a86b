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

/// The wrapped data key of one of `tenant`'s subjects, with the epoch it is wrapped under.
pub(crate) async fn wrapped(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
) -> Result<Option<(String, Vec<u8>)>, sqlx::Error> {
    sqlx::query(
        "SELECT k.kek_id, k.wrapped FROM data_keys k JOIN subjects s ON s.id = k.subject_id \
         WHERE s.id = $1 AND s.tenant_id = $2",
    )
    .bind(subject)
    .bind(tenant)
    .fetch_optional(c)
    .await?
    .map(|r| Ok((r.try_get("kek_id")?, r.try_get("wrapped")?)))
    .transpose()
}

/// Replaces the data key of one of `tenant`'s subjects (a re-key).
pub(crate) async fn replace(
    c: &mut Conn,
    tenant: &str,
    subject: &str,
    kek_id: &str,
    wrapped: Vec<u8>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE data_keys SET kek_id = $1, wrapped = $2 \
         WHERE subject_id IN (SELECT id FROM subjects WHERE id = $3 AND tenant_id = $4)",
    )
    .bind(kek_id)
    .bind(wrapped)
    .bind(subject)
    .bind(tenant)
    .execute(c)
    .await?;
    Ok(())
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
