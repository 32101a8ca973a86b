//! Key-encryption-key epochs: binding the database to its key store, rotation, re-keying a
//! subject, and the start-up upgrade of old envelopes.
//!
//! Why epochs: a backup (a file copy, a `pg_dump`, a replica, the WAL, free pages) taken before
//! a deletion still holds the deleted subject's wrapped data key and sealed templates. The
//! wrapping key of that copy is the epoch current when the copy was made. A rotation makes a new
//! epoch, re-wraps every live data key under it, and destroys the old epoch in the key store;
//! from then on no copy made before the rotation opens anything, while the live database opens
//! everything it still holds. So a deleted subject's templates are beyond recovery from any copy
//! of the database once the next rotation has run (by default within a day).

use consentry_vault::{DataKey, KeyContext};

use crate::audit::{self, Record, System};
use crate::core::{new_id, now};
use crate::keys::{epoch_id, epoch_seq};
use crate::store::{self, Conn};
use crate::{Core, CoreError};

/// Data keys re-wrapped per transaction during a rotation: short transactions, so requests go
/// on between them.
const REWRAP_BATCH: i64 = 200;

/// The pause after each batch, in which the requests waiting to write take their turn.
const REWRAP_PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// What a rotation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rotation {
    /// The new current epoch.
    pub epoch: String,
    /// Data keys re-wrapped under it.
    pub rewrapped: u64,
    /// Epochs destroyed (their secrets gone from the key store).
    pub destroyed: Vec<String>,
    /// Epochs kept because data keys are still under them (keys that did not unwrap; each is
    /// logged). A later rotation tries again.
    pub kept: Vec<String>,
}

impl Core {
    /// At start: checks that the key store is this database's (or binds a new pair), drops
    /// leftovers of an interrupted rotation, makes the first epoch when there is none, and
    /// refuses to start when an epoch that data keys are wrapped under is missing.
    pub(crate) async fn bind_key_store(&self) -> Result<(), CoreError> {
        let mut tx = self.db.begin_write().await?;
        let in_db = store::kek_epochs::store_id(&mut tx).await?;
        let held = self.keys.keks.store_id()?;
        let epochs = store::kek_epochs::all(&mut tx).await?;
        let where_ = self.keys.keks.describe();
        match (in_db, held) {
            (Some(d), Some(h)) if d == h => {}
            (Some(d), Some(h)) => {
                return Err(CoreError::KeyFile(format!(
                    "{where_} is key store {h}, but this database's keys are in key store {d}"
                )))
            }
            (Some(d), None) => {
                return Err(CoreError::KeyFile(format!(
                    "{where_} holds no keys, but this database's keys are in key store {d}: \
                     give the key store it was started with"
                )))
            }
            (None, Some(h)) => {
                if !self.keys.keks.epochs()?.is_empty() || epochs.iter().any(|e| e.seq > 0) {
                    return Err(CoreError::KeyFile(format!(
                        "{where_} is key store {h}, which holds the keys of another database: \
                         give this database a key store of its own (--key-dir), or remove that \
                         one if its database is gone for good"
                    )));
                }
                store::kek_epochs::set_store_id(&mut tx, &h, now()).await?;
            }
            (None, None) => {
                let id = new_id();
                self.keys.keks.set_store_id(&id)?;
                store::kek_epochs::set_store_id(&mut tx, &id, now()).await?;
            }
        }
        let named: Vec<u64> = epochs
            .iter()
            .filter_map(|e| u64::try_from(e.seq).ok().filter(|&s| s > 0))
            .collect();
        let newest = named.iter().copied().max().unwrap_or(0);
        // Held but not named, and older than the current epoch: a rotation stopped between
        // deleting the row and destroying the secret. (A newer one may be a rotation another
        // node is making right now: left alone, and reused by the next rotation.)
        for seq in self.keys.keks.epochs()? {
            if !named.contains(&seq) && seq < newest {
                tracing::warn!(epoch = %epoch_id(seq), "destroying a leftover key-encryption key");
                self.keys.keks.destroy(seq)?;
            }
        }
        let held = self.keys.keks.epochs()?;
        for e in epochs.iter().filter(|e| e.seq > 0) {
            let seq = u64::try_from(e.seq).unwrap_or(0);
            if !held.contains(&seq) {
                if store::kek_epochs::keys_under(&mut tx, &e.id).await? > 0 {
                    return Err(CoreError::KeyFile(format!(
                        "{where_} lacks key-encryption key {}, which this database's data keys \
                         are wrapped under",
                        e.id
                    )));
                }
                store::kek_epochs::delete_unused(&mut tx, &e.id).await?;
            }
        }
        if store::kek_epochs::current(&mut tx).await?.is_none() {
            self.keys.keks.create(1)?;
            store::kek_epochs::insert(&mut tx, &epoch_id(1), 1, now()).await?;
        }
        tx.commit().await?;
        self.refresh_current_epoch().await?;
        self.upgrade_envelopes().await
    }

    /// The current epoch, read from the database (another node may have rotated).
    pub(crate) async fn current_epoch(&self, c: &mut Conn) -> Result<(u64, String), CoreError> {
        let e = store::kek_epochs::current(c)
            .await?
            .ok_or_else(|| CoreError::KeyFile("no key-encryption key epoch".into()))?;
        let seq = u64::try_from(e.seq).map_err(|_| CoreError::Internal("epoch".into()))?;
        self.set_current_epoch(seq, &e.id)?;
        Ok((seq, e.id))
    }

    /// Remembers the current epoch, with a decoy data key wrapped under it when it changed.
    fn set_current_epoch(&self, seq: u64, id: &str) -> Result<(), CoreError> {
        let known = self.current_kek.lock().map(|c| c.0 == id).unwrap_or(false);
        if !known {
            let ctx = KeyContext {
                tenant: "decoy",
                subject: "decoy",
            };
            let wrapped = self.keys.wrap(seq, ctx, &DataKey::generate())?;
            if let Ok(mut current) = self.current_kek.lock() {
                *current = (id.to_string(), wrapped);
            }
        }
        Ok(())
    }

    async fn refresh_current_epoch(&self) -> Result<(), CoreError> {
        let mut c = self.db.pool().acquire().await?;
        self.current_epoch(&mut c).await.map(|_| ())
    }

    /// The work of unwrapping a subject's data key, for a subject that does not exist: the
    /// decoy under the current epoch, which fails at the tag like a wrong key would.
    pub(crate) fn unwrap_decoy(&self, ctx: KeyContext<'_>) {
        let (id, wrapped) = self
            .current_kek
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        let _ = self.keys.unwrap(&id, ctx, &wrapped);
    }

    /// Wraps a subject's data key under the current epoch: `(kek_id, wrapped)`.
    pub(crate) async fn wrap_data_key(
        &self,
        c: &mut Conn,
        ctx: KeyContext<'_>,
        key: &DataKey,
    ) -> Result<(String, Vec<u8>), CoreError> {
        let (seq, id) = self.current_epoch(c).await?;
        Ok((id, self.keys.wrap(seq, ctx, key)?))
    }

    /// Gives a subject a new data key and re-seals its remaining templates under it, in the
    /// caller's transaction: the templates deleted before (a withdrawn purpose, an expired
    /// retention) stay closed in every copy of the database, because the key they were sealed
    /// under is gone once the epoch it is wrapped under in those copies is destroyed.
    pub(crate) async fn rekey_subject(
        &self,
        c: &mut Conn,
        tenant: &str,
        subject: &str,
    ) -> Result<(), CoreError> {
        let Some((kek_id, wrapped)) = store::data_keys::wrapped(c, tenant, subject).await? else {
            return Ok(());
        };
        let ctx = KeyContext { tenant, subject };
        let old = self.keys.unwrap(&kek_id, ctx, &wrapped)?;
        let new = DataKey::generate();
        for (row, envelope) in store::templates::of_subject(c, tenant, subject).await? {
            let t = if envelope == 1 {
                old.open_template_v1(row.context(tenant), &row.sealed)
            } else {
                old.open_template(row.context(tenant), &row.sealed)
            };
            match t {
                Ok(t) => {
                    let sealed = new.seal_template(row.context(tenant), &t)?;
                    store::templates::reseal(c, tenant, &row.id, &row.sealed, sealed).await?;
                }
                // A row edited behind the server's back: it did not open before and does not
                // now; left for the operator to see.
                Err(_) => tracing::warn!("a template does not open with its subject's key"),
            }
        }
        let (kek_id, wrapped) = self.wrap_data_key(c, ctx, &new).await?;
        store::data_keys::replace(c, tenant, subject, &kek_id, wrapped).await?;
        Ok(())
    }

    /// Re-seals version-1 envelopes as version 2 (at start, a few hundred subjects per
    /// transaction), re-keying each subject on the way.
    async fn upgrade_envelopes(&self) -> Result<(), CoreError> {
        loop {
            let mut tx = self.db.begin_write().await?;
            let subjects = store::templates::subjects_with_v1(&mut tx, 200).await?;
            if subjects.is_empty() {
                return Ok(());
            }
            for (tenant, subject) in &subjects {
                self.rekey_subject(&mut tx, tenant, subject).await?;
                // A v1 envelope that did not open stays v1: marked so the loop ends.
                sqlx::query(
                    "UPDATE templates SET envelope = 0 WHERE subject_id = $1 AND envelope = 1",
                )
                .bind(subject)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            tracing::info!(
                subjects = subjects.len(),
                "upgraded template envelopes to version 2"
            );
        }
    }

    /// Rotates the key-encryption key: a new epoch, every data key re-wrapped under it (in short
    /// transactions; requests go on), then every older epoch destroyed. `progress(done, total)`
    /// is called after each batch. Safe to run on a live server and from another process.
    pub async fn rotate_keys(
        &self,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<Rotation, CoreError> {
        let (seq, id) = {
            let mut tx = self.db.begin_write().await?;
            let seq = store::kek_epochs::all(&mut tx)
                .await?
                .iter()
                .map(|e| e.seq)
                .max()
                .unwrap_or(0)
                + 1;
            let seq = u64::try_from(seq).map_err(|_| CoreError::Internal("epoch".into()))?;
            // The secret first: a row names only an epoch that exists.
            self.keys.keks.create(seq)?;
            let id = epoch_id(seq);
            store::kek_epochs::insert(&mut tx, &id, i64::try_from(seq).unwrap_or(i64::MAX), now())
                .await?;
            tx.commit().await?;
            (seq, id)
        };
        self.set_current_epoch(seq, &id)?;
        let total = {
            let mut c = self.db.pool().acquire().await?;
            u64::try_from(store::kek_epochs::keys_not_under(&mut c, &id).await?).unwrap_or(0)
        };
        let mut done = 0u64;
        progress(0, total);
        // Two passes: a node that had not yet seen the new epoch may have wrapped a key under
        // the old one during the first.
        for _pass in 0..2 {
            let mut after = String::new();
            loop {
                // Read a page and re-wrap it with no lock held; then a short write transaction
                // with only the updates (each applied only if the key is still the one read),
                // and a pause, so that the writes of live requests get their turn.
                let page = {
                    let mut c = self.db.pool().acquire().await?;
                    store::kek_epochs::page_not_under(&mut c, &id, &after, REWRAP_BATCH).await?
                };
                let Some(last) = page.last() else { break };
                after = last.subject.clone();
                let mut rewrapped = Vec::with_capacity(page.len());
                for k in &page {
                    let ctx = KeyContext {
                        tenant: &k.tenant,
                        subject: &k.subject,
                    };
                    match self.keys.unwrap(&k.kek_id, ctx, &k.wrapped) {
                        Ok(key) => rewrapped.push((k, self.keys.wrap(seq, ctx, &key)?)),
                        Err(e) => tracing::error!(
                            error = %e,
                            "a data key does not unwrap; its epoch is kept"
                        ),
                    }
                }
                let mut tx = self.db.begin_write().await?;
                for (k, wrapped) in rewrapped {
                    if store::kek_epochs::rewrap(&mut tx, &k.subject, &k.kek_id, &id, wrapped)
                        .await?
                    {
                        done += 1;
                    }
                }
                tx.commit().await?;
                progress(done, total.max(done));
                tokio::time::sleep(REWRAP_PAUSE).await;
            }
        }
        let mut destroyed = Vec::new();
        let mut kept = Vec::new();
        let epochs = {
            let mut c = self.db.pool().acquire().await?;
            store::kek_epochs::all(&mut c).await?
        };
        for e in epochs.into_iter().filter(|e| e.id != id) {
            let mut tx = self.db.begin_write().await?;
            let gone = store::kek_epochs::delete_unused(&mut tx, &e.id).await;
            let gone = match gone {
                Ok(g) => tx.commit().await.map(|()| g).unwrap_or(false),
                // The foreign key: a data key was wrapped under it meanwhile.
                Err(_) => false,
            };
            if gone {
                if let Some(seq) = epoch_seq(&e.id) {
                    self.keys.keks.destroy(seq)?;
                }
                destroyed.push(e.id);
            } else {
                kept.push(e.id);
            }
        }
        let rotation = Rotation {
            epoch: id,
            rewrapped: done,
            destroyed,
            kept,
        };
        self.record_rotation(&rotation).await?;
        Ok(rotation)
    }

    /// One entry in each tenant's log: the keys of its subjects were re-wrapped.
    async fn record_rotation(&self, r: &Rotation) -> Result<(), CoreError> {
        let mut tx = self.db.begin_write().await?;
        for tenant in store::tenants::all_ids(&mut tx).await? {
            let rec = Record::ok("keys.rotate", None).detail(format!(
                "epoch={} destroyed={} kept={}",
                r.epoch,
                r.destroyed.join(","),
                r.kept.join(",")
            ));
            audit::record_system(&mut tx, &tenant, System::KeyRotation, rec).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Rotates when the current epoch is at least `period_secs` old (the server's daily job;
    /// with several nodes, the first to find it due does it).
    pub async fn rotate_keys_if_due(
        &self,
        period_secs: i64,
    ) -> Result<Option<Rotation>, CoreError> {
        let due = {
            let mut c = self.db.pool().acquire().await?;
            store::kek_epochs::current(&mut c)
                .await?
                .is_none_or(|e| now() - e.created_at >= period_secs)
        };
        if due {
            self.rotate_keys(&|_, _| {}).await.map(Some)
        } else {
            Ok(None)
        }
    }

    /// Adds `n` subjects to the caller's tenant, each with its own data key wrapped under the
    /// current epoch, 1000 a transaction and without log entries: the population of `consentry
    /// bench rotate`. `progress(done)` after each transaction.
    #[doc(hidden)]
    pub async fn bench_create_subjects(
        &self,
        p: &crate::Principal,
        n: u64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), CoreError> {
        p.require(&[crate::Role::Admin])?;
        let mut done = 0;
        while done < n {
            let mut tx = self.db.begin_write().await?;
            for _ in 0..(n - done).min(1000) {
                let subject = new_id();
                let ctx = KeyContext {
                    tenant: &p.tenant,
                    subject: &subject,
                };
                let (kek_id, wrapped) = self
                    .wrap_data_key(&mut tx, ctx, &DataKey::generate())
                    .await?;
                store::subjects::insert(&mut tx, &p.tenant, &subject, now()).await?;
                store::data_keys::insert(&mut tx, &subject, &kek_id, wrapped).await?;
                done += 1;
            }
            tx.commit().await?;
            progress(done);
        }
        Ok(())
    }

    /// The epochs the key store holds (for tests and `consentry admin`).
    #[doc(hidden)]
    pub fn held_epochs(&self) -> Result<Vec<u64>, CoreError> {
        self.keys.keks.epochs()
    }

    /// Wipes from memory the epochs another process destroyed (the server's periodic job).
    pub async fn sync_key_store(&self) -> Result<(), CoreError> {
        let named: Vec<u64> = {
            let mut c = self.db.pool().acquire().await?;
            store::kek_epochs::all(&mut c)
                .await?
                .iter()
                .filter_map(|e| epoch_seq(&e.id))
                .collect()
        };
        let newest = named.iter().copied().max().unwrap_or(0);
        for seq in self.keys.keks.epochs()? {
            if !named.contains(&seq) && seq < newest {
                self.keys.keks.forget(seq)?;
            }
        }
        self.refresh_current_epoch().await
    }
}

impl Core {
    /// Re-keys a tenant's template transform: a new secret rotation, every template of the
    /// tenant taken out of the old one and into the new one and sealed again, in one write
    /// transaction (verifications and identifications see the old generation or the new, never
    /// a mix), and every node's gallery reloaded. What an attacker learnt about the old
    /// transform (known pairs of raw and protected templates, a fitted inverse) says nothing
    /// about the new one. Returns the new generation and how many templates moved.
    pub async fn rekey_transform(&self, tenant: &str) -> Result<(i64, u64), CoreError> {
        let mut tx = self.db.begin_write().await?;
        self.tenant_exists(&mut tx, tenant).await?;
        let old_gen = store::tenants::transform_gen(&mut tx, tenant).await?;
        let new_gen = store::tenants::next_transform_gen(&mut tx, tenant).await?;
        let rows = store::templates::of_tenant(&mut tx, tenant).await?;
        let mut moved = 0u64;
        let mut key: Option<(String, DataKey)> = None;
        for a in &rows {
            if key.as_ref().is_none_or(|(s, _)| *s != a.row.subject) {
                let ctx = KeyContext {
                    tenant,
                    subject: &a.row.subject,
                };
                key = Some((
                    a.row.subject.clone(),
                    self.keys.unwrap(&a.kek_id, ctx, &a.wrapped)?,
                ));
            }
            let Some((_, k)) = &key else { continue };
            let ctx = a.row.context(tenant);
            let Ok(t) = k.open_template(ctx, &a.row.sealed) else {
                tracing::warn!("a template does not open; left as it is");
                continue;
            };
            // Each template in the transform of its own length (face or voice).
            let (old, new) = (
                self.transform(tenant, old_gen, t.len()),
                self.transform(tenant, new_gen, t.len()),
            );
            let raw = zeroize::Zeroizing::new(old.invert(&t)?);
            let sealed = k.seal_template(ctx, &new.apply(&raw)?)?;
            store::templates::reseal(&mut tx, tenant, &a.row.id, &a.row.sealed, sealed).await?;
            moved += 1;
        }
        store::gallery::record(&mut tx, tenant, store::gallery::Op::Reload, None, None).await?;
        let r = Record::ok("transform.rekey", None)
            .detail(format!("generation={new_gen} templates={moved}"));
        audit::record_system(&mut tx, tenant, System::Cli, r).await?;
        tx.commit().await?;
        Ok((new_gen, moved))
    }
}
