//! The audit log: the record every action appends inside its own transaction, and the reads
//! an auditor (or the person, for their own record) makes.
//!
//! One log per tenant, each its own Merkle tree with its own signing key and origin
//! (`consentry/<tenant id>`): an auditor of one tenant gets checkpoints and proofs over that
//! tenant's entries only, learns nothing of another tenant's activity (not even its volume),
//! and there is no query path across tenants, in the log as anywhere else.

use consentry_audit::merkle::{self, consistency_ranges, inclusion_ranges, nodes_for, Hash};
use consentry_audit::{Actor, Checkpoint, Entry, VerifierKey};

use crate::core::{new_id, now};
use crate::store::{self, audit::NewEntry, Conn};
use crate::{Core, CoreError, Principal, Role};

/// The most entries one read returns.
pub const MAX_ENTRIES_PER_READ: u64 = 1000;

/// What an action appends.
pub(crate) struct Record<'a> {
    /// e.g. `subject.read`.
    pub action: &'static str,
    /// The record acted on.
    pub target: Option<&'a str>,
    /// `ok`, `allow`, `deny`, `no_match`.
    pub outcome: &'static str,
    /// Extra context (never personal data, images, templates or scores).
    pub detail: Option<String>,
}

impl<'a> Record<'a> {
    pub(crate) fn ok(action: &'static str, target: Option<&'a str>) -> Record<'a> {
        Record {
            action,
            target,
            outcome: "ok",
            detail: None,
        }
    }

    pub(crate) fn detail(mut self, detail: String) -> Record<'a> {
        self.detail = Some(detail);
        self
    }
}

/// Who acts when no key does: the `consentry` command on the server's machine, and the
/// retention sweep.
pub(crate) enum System {
    Cli,
    Sweep,
    AbuseRules,
    KeyRotation,
}

async fn append(
    c: &mut Conn,
    tenant: &str,
    actor: Actor,
    purpose: Option<String>,
    request_id: String,
    r: Record<'_>,
) -> Result<u64, CoreError> {
    let entry = Entry {
        time: now(),
        tenant: tenant.to_string(),
        actor,
        action: r.action.to_string(),
        target: r.target.map(str::to_string),
        purpose,
        outcome: r.outcome.to_string(),
        detail: r.detail,
        request_id,
    };
    let row = NewEntry {
        at: entry.time,
        actor_key: &entry.actor.key,
        action: r.action,
        target: r.target,
        bytes: entry.to_bytes(),
    };
    Ok(store::audit::append(c, tenant, row).await?)
}

/// Appends `r`, attributed to the caller, inside the transaction `c`. A device key's site is
/// added to the detail.
pub(crate) async fn record(
    c: &mut Conn,
    p: &Principal,
    mut r: Record<'_>,
) -> Result<u64, CoreError> {
    if let Some(site) = &p.site {
        r.detail = Some(match r.detail.take() {
            Some(d) => format!("{d} site={site}"),
            None => format!("site={site}"),
        });
    }
    let actor = Actor {
        key: p.key.clone(),
        role: p.role.as_str().to_string(),
    };
    append(
        c,
        &p.tenant,
        actor,
        p.purpose.clone(),
        p.request_id.clone(),
        r,
    )
    .await
}

/// Appends `r` for an action no key made.
pub(crate) async fn record_system(
    c: &mut Conn,
    tenant: &str,
    who: System,
    r: Record<'_>,
) -> Result<u64, CoreError> {
    let (key, role) = match who {
        System::Cli => ("cli", "system"),
        System::Sweep => ("retention-sweep", "system"),
        System::AbuseRules => ("abuse-rules", "system"),
        System::KeyRotation => ("key-rotation", "system"),
    };
    let actor = Actor {
        key: key.into(),
        role: role.into(),
    };
    append(c, tenant, actor, None, new_id(), r).await
}

/// Appends `r` for an action the person took on their own record with their token (actor
/// `subject`, role `subject`).
pub(crate) async fn record_subject(
    c: &mut Conn,
    tenant: &str,
    r: Record<'_>,
) -> Result<u64, CoreError> {
    let actor = Actor {
        key: "subject".into(),
        role: "subject".into(),
    };
    append(c, tenant, actor, None, new_id(), r).await
}

/// One access to a person's record, as the person sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Access {
    /// The entry's index in the tenant's log (for an inclusion proof).
    pub index: u64,
    /// Unix seconds.
    pub time: i64,
    /// The key's id and role.
    pub actor: Actor,
    /// What was done.
    pub action: String,
    /// The purpose the caller stated.
    pub purpose: Option<String>,
    /// How it ended.
    pub outcome: String,
}

/// The log's origin line (and its key's name) for `tenant`.
pub fn origin(tenant: &str) -> String {
    format!("consentry/{tenant}")
}

fn missing() -> CoreError {
    CoreError::Internal("audit tree: a stored node is missing".into())
}

impl Core {
    /// The key that signs `tenant`'s checkpoints, as a signed-note verifier key.
    pub fn audit_verifier_key(&self, tenant: &str) -> Result<VerifierKey, CoreError> {
        VerifierKey::new(
            &origin(tenant),
            &self.keys.audit_key(tenant).verifying_key(),
        )
        .map_err(|e| CoreError::Internal(format!("audit key: {e}")))
    }

    /// Appends `n` `bench.append` entries to `tenant`'s log in one write transaction: with
    /// `n` = 1, the work an action adds to its transaction by being logged (`consentry bench
    /// audit`, on a tenant made for the bench). Returns the last entry's index.
    #[doc(hidden)]
    pub async fn bench_audit_append(&self, tenant: &str, n: u64) -> Result<u64, CoreError> {
        let mut tx = self.db.begin_write().await?;
        let mut last = 0;
        for _ in 0..n {
            let r = Record::ok("bench.append", None);
            last = record_system(&mut tx, tenant, System::Cli, r).await?;
        }
        tx.commit().await?;
        Ok(last)
    }

    /// The caller's tenant's verifier key (any role may read it: it is public).
    pub fn tenant_audit_key(&self, p: &Principal) -> Result<VerifierKey, CoreError> {
        self.audit_verifier_key(&p.tenant)
    }

    /// The current checkpoint of the caller's tenant's log, signed (admins and auditors).
    pub async fn audit_checkpoint(&self, p: &Principal) -> Result<String, CoreError> {
        p.require(&[Role::Admin, Role::Auditor])?;
        let mut c = self.db.pool().acquire().await?;
        let size = store::audit::size(&mut c, &p.tenant).await?;
        let root = self.audit_root(&mut c, &p.tenant, size).await?;
        let cp = Checkpoint {
            origin: origin(&p.tenant),
            size,
            root,
        };
        Ok(cp.sign(&self.keys.audit_key(&p.tenant)))
    }

    async fn audit_root(&self, c: &mut Conn, tenant: &str, size: u64) -> Result<Hash, CoreError> {
        let nodes = store::audit::nodes(c, tenant, &merkle::parts(0, size)).await?;
        merkle::root(size, |n| nodes.get(&n).copied()).ok_or_else(missing)
    }

    /// The root hash of the first `size` entries of the caller's tenant's log, as a checkpoint
    /// of that size had it (admins and auditors).
    pub async fn audit_root_at(&self, p: &Principal, size: u64) -> Result<Hash, CoreError> {
        p.require(&[Role::Admin, Role::Auditor])?;
        let mut c = self.db.pool().acquire().await?;
        if size > self.audit_size(&mut c, p).await? {
            return Err(CoreError::Invalid(
                "size must be at most the log's size".into(),
            ));
        }
        self.audit_root(&mut c, &p.tenant, size).await
    }

    /// Entries `start..end` of the caller's tenant's log (at most [`MAX_ENTRIES_PER_READ`]),
    /// each as its index and its exact bytes (admins and auditors).
    pub async fn audit_entries(
        &self,
        p: &Principal,
        start: u64,
        end: u64,
    ) -> Result<Vec<(u64, String)>, CoreError> {
        p.require(&[Role::Admin, Role::Auditor])?;
        if end < start || end - start > MAX_ENTRIES_PER_READ {
            return Err(CoreError::Invalid(format!(
                "end must be from start to start + {MAX_ENTRIES_PER_READ}"
            )));
        }
        let mut c = self.db.pool().acquire().await?;
        let rows = store::audit::entries(&mut c, &p.tenant, start, end).await?;
        Ok(rows
            .into_iter()
            .map(|(i, b)| (i, String::from_utf8_lossy(&b).into_owned()))
            .collect())
    }

    /// The tree size of the caller's tenant's log now.
    async fn audit_size(&self, c: &mut Conn, p: &Principal) -> Result<u64, CoreError> {
        Ok(store::audit::size(c, &p.tenant).await?)
    }

    /// The inclusion proof of entry `index` in the tree of `size` entries (admins, auditors).
    pub async fn audit_inclusion(
        &self,
        p: &Principal,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, CoreError> {
        p.require(&[Role::Admin, Role::Auditor])?;
        let mut c = self.db.pool().acquire().await?;
        if size > self.audit_size(&mut c, p).await? || index >= size {
            return Err(CoreError::Invalid(
                "index must be below tree_size, and tree_size at most the log's size".into(),
            ));
        }
        self.proof(&mut c, &p.tenant, &inclusion_ranges(index, size))
            .await
    }

    /// The consistency proof from the tree of `old` entries to the tree of `new` (admins,
    /// auditors).
    pub async fn audit_consistency(
        &self,
        p: &Principal,
        old: u64,
        new: u64,
    ) -> Result<Vec<Hash>, CoreError> {
        p.require(&[Role::Admin, Role::Auditor])?;
        let mut c = self.db.pool().acquire().await?;
        if new > self.audit_size(&mut c, p).await? || old > new {
            return Err(CoreError::Invalid(
                "first must be at most second, and second at most the log's size".into(),
            ));
        }
        self.proof(&mut c, &p.tenant, &consistency_ranges(old, new))
            .await
    }

    async fn proof(
        &self,
        c: &mut Conn,
        tenant: &str,
        ranges: &[merkle::Range],
    ) -> Result<Vec<Hash>, CoreError> {
        let nodes = store::audit::nodes(c, tenant, &nodes_for(ranges)).await?;
        merkle::range_hashes(ranges, |n| nodes.get(&n).copied()).ok_or_else(missing)
    }

    /// Who accessed a person's record, when, and for which stated purpose: the newest
    /// `limit` (at most [`MAX_ENTRIES_PER_READ`]) entries naming the subject (admins,
    /// operators, auditors).
    pub async fn subject_accesses(
        &self,
        p: &Principal,
        subject: &str,
        limit: u64,
    ) -> Result<Vec<Access>, CoreError> {
        p.require(&[Role::Admin, Role::Operator, Role::Auditor])?;
        self.accesses_of(&p.tenant, subject, limit).await
    }

    /// The accesses to `subject`'s record, newest first.
    pub(crate) async fn accesses_of(
        &self,
        tenant: &str,
        subject: &str,
        limit: u64,
    ) -> Result<Vec<Access>, CoreError> {
        let limit = i64::try_from(limit.clamp(1, MAX_ENTRIES_PER_READ)).unwrap_or(1);
        let mut c = self.db.pool().acquire().await?;
        let rows = store::audit::by_target(&mut c, tenant, subject, limit).await?;
        if rows.is_empty() {
            // Still its own tenant's subject? Deleted subjects keep their history.
            self.subject_in_tenant(&mut c, tenant, subject).await?;
        }
        Ok(rows
            .into_iter()
            .filter_map(|(index, bytes)| {
                let e = Entry::from_bytes(&bytes)?;
                Some(Access {
                    index,
                    time: e.time,
                    actor: e.actor,
                    action: e.action,
                    purpose: e.purpose,
                    outcome: e.outcome,
                })
            })
            .collect())
    }
}
