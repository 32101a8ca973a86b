//! `audit_heads`, `audit_entries`, `audit_nodes`: each tenant's audit log as a Merkle tree of
//! perfect subtrees (see `consentry_audit::merkle`).

use std::collections::HashMap;

use consentry_audit::merkle::{completed_by, leaf_hash, node_hash, Hash, Node};
use sqlx::Row;

use super::Conn;

/// What an append needs to know of the entry besides its bytes.
pub(crate) struct NewEntry<'a> {
    pub at: i64,
    pub actor_key: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub bytes: Vec<u8>,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Appends an entry to `tenant`'s log: takes the next index under the head row's lock (held to
/// the end of the caller's transaction, which serialises appends across nodes), stores the
/// entry, its leaf hash and the nodes it completes. Returns the entry's index.
pub(crate) async fn append(
    c: &mut Conn,
    tenant: &str,
    entry: NewEntry<'_>,
) -> Result<u64, sqlx::Error> {
    let size: i64 = sqlx::query(
        "INSERT INTO audit_heads (tenant_id, size) VALUES ($1, 1) \
         ON CONFLICT (tenant_id) DO UPDATE SET size = audit_heads.size + 1 RETURNING size",
    )
    .bind(tenant)
    .fetch_one(&mut *c)
    .await?
    .try_get("size")?;
    let index = u64::try_from(size - 1).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let leaf = leaf_hash(&entry.bytes);
    sqlx::query(
        "INSERT INTO audit_entries (tenant_id, idx, at, actor_key, action, target, entry) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant)
    .bind(size - 1)
    .bind(entry.at)
    .bind(entry.actor_key)
    .bind(entry.action)
    .bind(entry.target)
    .bind(entry.bytes)
    .execute(&mut *c)
    .await?;
    insert_node(c, tenant, Node { level: 0, index }, &leaf).await?;
    let mut cur = leaf;
    for node in completed_by(index) {
        let Some((left, _)) = node.children() else {
            break;
        };
        let found = nodes(c, tenant, &[left]).await?;
        let l = found.get(&left).ok_or_else(|| sqlx::Error::RowNotFound)?;
        cur = node_hash(l, &cur);
        insert_node(c, tenant, node, &cur).await?;
    }
    Ok(index)
}

async fn insert_node(
    c: &mut Conn,
    tenant: &str,
    node: Node,
    hash: &Hash,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit_nodes (tenant_id, level, idx, hash) VALUES ($1, $2, $3, $4)")
        .bind(tenant)
        .bind(i64::from(node.level))
        .bind(to_i64(node.index))
        .bind(hash.to_vec())
        .execute(c)
        .await?;
    Ok(())
}

/// The log's size (0 before its first entry).
pub(crate) async fn size(c: &mut Conn, tenant: &str) -> Result<u64, sqlx::Error> {
    let row = sqlx::query("SELECT size FROM audit_heads WHERE tenant_id = $1")
        .bind(tenant)
        .fetch_optional(c)
        .await?;
    Ok(match row {
        Some(r) => u64::try_from(r.try_get::<i64, _>("size")?).unwrap_or(0),
        None => 0,
    })
}

/// The stored hashes of `wanted` (a node that is missing or not 32 bytes is left out).
pub(crate) async fn nodes(
    c: &mut Conn,
    tenant: &str,
    wanted: &[Node],
) -> Result<HashMap<Node, Hash>, sqlx::Error> {
    let mut out = HashMap::with_capacity(wanted.len());
    for &node in wanted {
        let row = sqlx::query(
            "SELECT hash FROM audit_nodes WHERE tenant_id = $1 AND level = $2 AND idx = $3",
        )
        .bind(tenant)
        .bind(i64::from(node.level))
        .bind(to_i64(node.index))
        .fetch_optional(&mut *c)
        .await?;
        if let Some(row) = row {
            if let Ok(h) = <Hash>::try_from(row.try_get::<Vec<u8>, _>("hash")?) {
                out.insert(node, h);
            }
        }
    }
    Ok(out)
}

/// Entries `start..end` (as stored: the verifier finds any that are missing), in order.
pub(crate) async fn entries(
    c: &mut Conn,
    tenant: &str,
    start: u64,
    end: u64,
) -> Result<Vec<(u64, Vec<u8>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT idx, entry FROM audit_entries WHERE tenant_id = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
    )
    .bind(tenant)
    .bind(to_i64(start))
    .bind(to_i64(end))
    .fetch_all(c)
    .await?;
    rows.iter()
        .map(|r| {
            let idx: i64 = r.try_get("idx")?;
            Ok((u64::try_from(idx).unwrap_or(0), r.try_get("entry")?))
        })
        .collect()
}

/// The newest `limit` entries about `target`, newest first.
pub(crate) async fn by_target(
    c: &mut Conn,
    tenant: &str,
    target: &str,
    limit: i64,
) -> Result<Vec<(u64, Vec<u8>)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT idx, entry FROM audit_entries WHERE tenant_id = $1 AND target = $2 ORDER BY idx DESC LIMIT $3",
    )
    .bind(tenant)
    .bind(target)
    .bind(limit)
    .fetch_all(c)
    .await?;
    rows.iter()
        .map(|r| {
            let idx: i64 = r.try_get("idx")?;
            Ok((u64::try_from(idx).unwrap_or(0), r.try_get("entry")?))
        })
        .collect()
}
