//! `gallery_changes`: the feed through which every node applies enrolments and deletions made
//! by any node to its in-memory 1:N galleries.

use sqlx::Row;

use super::Conn;

/// What changed in a tenant's gallery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// A template was enrolled for access.
    Add,
    /// A subject's access templates are gone.
    RemoveSubject,
    /// One access template is gone (the retention sweep).
    RemoveTemplate,
    /// Reload the whole gallery (after a retention sweep).
    Reload,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::RemoveSubject => "remove_subject",
            Op::RemoveTemplate => "remove_template",
            Op::Reload => "reload",
        }
    }
}

/// The tenant id that addresses every tenant's gallery (a reload of every gallery; written
/// by older versions' sweeps and still honoured).
pub(crate) const EVERY_TENANT: &str = "*";

/// One change read back.
pub(crate) struct Change {
    pub seq: i64,
    pub op: Op,
    pub template: Option<String>,
    pub subject: Option<String>,
}

/// Appends a change inside the caller's transaction.
pub(crate) async fn record(
    c: &mut Conn,
    tenant: &str,
    op: Op,
    template: Option<&str>,
    subject: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO gallery_changes (tenant_id, op, template_id, subject_id) VALUES ($1, $2, $3, $4)",
    )
    .bind(tenant)
    .bind(op.as_str())
    .bind(template)
    .bind(subject)
    .execute(c)
    .await?;
    Ok(())
}

/// The latest sequence number (0 for an empty feed).
pub(crate) async fn last_seq(c: &mut Conn) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COALESCE(MAX(seq), 0) AS s FROM gallery_changes")
        .fetch_one(c)
        .await?
        .try_get("s")
}

/// `tenant`'s changes (and those for every tenant) after `seq`, in order.
pub(crate) async fn since(
    c: &mut Conn,
    tenant: &str,
    seq: i64,
) -> Result<Vec<Change>, sqlx::Error> {
    sqlx::query(
        "SELECT seq, op, template_id, subject_id FROM gallery_changes \
         WHERE (tenant_id = $1 OR tenant_id = $3) AND seq > $2 ORDER BY seq",
    )
    .bind(tenant)
    .bind(seq)
    .bind(EVERY_TENANT)
    .fetch_all(c)
    .await?
    .into_iter()
    .map(|r| {
        let op = match r.try_get::<String, _>("op")?.as_str() {
            "add" => Op::Add,
            "remove_subject" => Op::RemoveSubject,
            "remove_template" => Op::RemoveTemplate,
            _ => Op::Reload,
        };
        Ok(Change {
            seq: r.try_get("seq")?,
            op,
            template: r.try_get("template_id")?,
            subject: r.try_get("subject_id")?,
        })
    })
    .collect()
}
