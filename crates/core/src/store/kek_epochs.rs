//! `key_store`, `kek_epochs`: which key store this database's keys are in, and the names (never
//! the secrets) of its key-encryption-key epochs. Not per tenant: one epoch wraps every
//! tenant's data keys (each tenant under its own KEK derived from it), so rotation and its
//! maintenance queries span tenants, like the retention sweep.

use sqlx::Row;

use super::Conn;

/// The id of the key store this database was bound to, if any.
pub(crate) async fn store_id(c: &mut Conn) -> Result<Option<String>, sqlx::Error> {
    sqlx::query("SELECT id FROM key_store")
        .fetch_optional(c)
        .await?
        .map(|r| r.try_get("id"))
        .transpose()
}

/// Binds this database to a key store.
pub(crate) async fn set_store_id(c: &mut Conn, id: &str, at: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO key_store (id, created_at) VALUES ($1, $2)")
        .bind(id)
        .bind(at)
        .execute(c)
        .await?;
    Ok(())
}

/// An epoch's row.
pub(crate) struct Epoch {
    pub id: String,
    pub seq: i64,
    pub created_at: i64,
}

/// Every epoch named in the database, oldest first (the root-derived ones, seq 0, first).
pub(crate) async fn all(c: &mut Conn) -> Result<Vec<Epoch>, sqlx::Error> {
    sqlx::query("SELECT id, seq, created_at FROM kek_epochs ORDER BY seq, id")
        .fetch_all(c)
        .await?
        .into_iter()
        .map(|r| {
            Ok(Epoch {
                id: r.try_get("id")?,
                seq: r.try_get("seq")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// The current epoch (the highest), if any.
pub(crate) async fn current(c: &mut Conn) -> Result<Option<Epoch>, sqlx::Error> {
    Ok(all(c).await?.into_iter().rfind(|e| e.seq > 0))
}

/// Names a new epoch. Fails (unique index) when another node named the same one first.
pub(crate) async fn insert(c: &mut Conn, id: &str, seq: i64, at: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO kek_epochs (id, seq, created_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(seq)
        .bind(at)
        .execute(c)
        .await?;
    Ok(())
}

/// Deletes an epoch's row when no data key is wrapped under it. The foreign key from
/// `data_keys` makes this safe against a data key being wrapped under it at the same moment:
/// the delete then fails rather than orphan that key. Returns whether the row went.
pub(crate) async fn delete_unused(c: &mut Conn, id: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM kek_epochs WHERE id = $1 \
         AND NOT EXISTS (SELECT 1 FROM data_keys WHERE kek_id = $1)",
    )
    .bind(id)
    .execute(c)
    .await?
    .rows_affected()
        > 0)
}

/// How many data keys are wrapped under epoch `id`.
pub(crate) async fn keys_under(c: &mut Conn, id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM data_keys WHERE kek_id = $1")
        .bind(id)
        .fetch_one(c)
        .await?
        .try_get("n")
}

/// How many data keys are wrapped under any epoch but `id`.
pub(crate) async fn keys_not_under(c: &mut Conn, id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM data_keys WHERE kek_id <> $1")
        .bind(id)
        .fetch_one(c)
        .await?
        .try_get("n")
}

/// A data key to re-wrap.
pub(crate) struct Wrapped {
    pub subject: String,
    pub tenant: String,
    pub kek_id: String,
    pub wrapped: Vec<u8>,
}

/// Up to `limit` data keys not under epoch `id`, of subjects after `after` in id order (keyset
/// pages: a key that cannot be re-wrapped is not read again in the same pass).
pub(crate) async fn page_not_under(
    c: &mut Conn,
    id: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<Wrapped>, sqlx::Error> {
    sqlx::query(
        "SELECT k.subject_id, s.tenant_id, k.kek_id, k.wrapped FROM data_keys k \
         JOIN subjects s ON s.id = k.subject_id \
         WHERE k.kek_id <> $1 AND k.subject_id > $2 ORDER BY k.subject_id LIMIT $3",
    )
    .bind(id)
    .bind(after)
    .bind(limit)
    .fetch_all(c)
    .await?
    .into_iter()
    .map(|r| {
        Ok(Wrapped {
            subject: r.try_get("subject_id")?,
            tenant: r.try_get("tenant_id")?,
            kek_id: r.try_get("kek_id")?,
            wrapped: r.try_get("wrapped")?,
        })
    })
    .collect()
}

/// Replaces a data key's wrapping when it is still the one read (`old_kek`): a key re-keyed or
/// deleted meanwhile is left as it now is.
pub(crate) async fn rewrap(
    c: &mut Conn,
    subject: &str,
    old_kek: &str,
    new_kek: &str,
    wrapped: Vec<u8>,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE data_keys SET kek_id = $1, wrapped = $2 WHERE subject_id = $3 AND kek_id = $4",
    )
    .bind(new_kek)
    .bind(wrapped)
    .bind(subject)
    .bind(old_kek)
    .execute(c)
    .await?
    .rows_affected()
        > 0)
}
