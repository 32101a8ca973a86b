//! Each tenant's in-memory 1:N gallery, loaded from the vault and kept in step with every node's
//! changes through the `gallery_changes` feed.
//!
//! Every tenant's gallery is its own (`Arc<RwLock<Gallery>>` in a map), and no lock is held
//! across I/O: a sync reads the feed and opens the templates it needs first, then takes the
//! gallery's write lock only to apply the prepared changes, in feed order, skipping any another
//! sync already applied. One tenant's load, sync or sweep never waits on another's.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use consentry_index::{FlatIndex, Index};
use consentry_vault::KeyContext;
use zeroize::Zeroizing;

use crate::core::now;
use crate::store::{self, gallery::Op};
use crate::{Core, CoreError};

/// One tenant's in-memory gallery of access templates (transformed, never raw embeddings).
pub(crate) struct Gallery {
    pub(crate) index: FlatIndex,
    /// The last change of `gallery_changes` applied.
    pub(crate) seq: i64,
    /// The generation of the tenant's transform its templates are in.
    pub(crate) generation: i64,
    next: u64,
    pub(crate) by_key: HashMap<u64, (String, String)>,
    by_template: HashMap<String, u64>,
}

impl Gallery {
    fn new(dim: usize) -> Self {
        Gallery {
            index: FlatIndex::new(dim),
            seq: 0,
            generation: 0,
            next: 0,
            by_key: HashMap::new(),
            by_template: HashMap::new(),
        }
    }

    /// Adds a template (once: adding it again is a no-op). A vector the index refuses (wrong
    /// dimension, not finite) is an error, never a template silently missing from the gallery.
    fn add(&mut self, template: &str, subject: &str, vector: &[f32]) -> Result<(), CoreError> {
        if self.by_template.contains_key(template) {
            return Ok(());
        }
        let key = self.next;
        self.index.add(key, vector)?;
        self.next += 1;
        self.by_key
            .insert(key, (template.to_string(), subject.to_string()));
        self.by_template.insert(template.to_string(), key);
        Ok(())
    }

    fn remove_template(&mut self, template: &str) {
        if let Some(k) = self.by_template.remove(template) {
            self.index.remove(k);
            self.by_key.remove(&k);
        }
    }

    fn remove_subject(&mut self, subject: &str) {
        let keys: Vec<u64> = self
            .by_key
            .iter()
            .filter(|(_, v)| v.1 == subject)
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.index.remove(k);
            if let Some((t, _)) = self.by_key.remove(&k) {
                self.by_template.remove(&t);
            }
        }
    }
}

/// A tenant's gallery, shared between the requests that search and sync it.
pub(crate) type Shared = Arc<RwLock<Gallery>>;

/// An opened access template: id, subject, transformed vector.
type Opened = (String, String, Zeroizing<Vec<f32>>);

/// A feed change with what applying it needs, read before any lock is taken.
enum Prepared {
    Add(Vec<Opened>),
    RemoveSubject(String),
    RemoveTemplate(String),
    Reload(Box<Gallery>),
}

impl Core {
    /// Access templates of a tenant (or only `only`) with an active access consent, opened
    /// with their subjects' data keys.
    async fn open_access_templates(
        &self,
        tenant: &str,
        only: Option<&str>,
    ) -> Result<Vec<Opened>, CoreError> {
        let mut c = self.db.pool().acquire().await?;
        let rows =
            store::templates::live_access(&mut c, tenant, only, self.template_model(), now())
                .await?;
        drop(c);
        let mut out = Vec::with_capacity(rows.len());
        for a in rows {
            let ctx = KeyContext {
                tenant,
                subject: &a.row.subject,
            };
            // A key that does not unwrap here (a row moved from another tenant) or a template
            // that does not open: refused and left out, never a gallery that fails to load.
            let Ok(key) = self.keys.unwrap(&a.kek_id, ctx, &a.wrapped) else {
                tracing::warn!(
                    "a data key does not unwrap; its template is left out of the gallery"
                );
                continue;
            };
            match key.open_template(a.row.context(tenant), &a.row.sealed) {
                Ok(template) => out.push((a.row.id, a.row.subject, template)),
                // A row edited behind the server's back (moved from verification to access,
                // given a longer retention, another subject's): refused, never in the gallery.
                Err(_) => {
                    tracing::warn!("an access template does not open; left out of the gallery")
                }
            }
        }
        Ok(out)
    }

    /// Loads a tenant's whole gallery from the vault. The change sequence is read first, so a
    /// change committed during the load is applied again afterwards (applying is idempotent).
    async fn load_gallery(&self, tenant: &str) -> Result<Gallery, CoreError> {
        let mut c = self.db.pool().acquire().await?;
        let seq = store::gallery::last_seq(&mut c).await?;
        let generation = store::tenants::transform_gen(&mut c, tenant).await?;
        drop(c);
        let mut gallery = Gallery::new(self.engine.models().models().1.dim());
        gallery.seq = seq;
        gallery.generation = generation;
        for (id, subject, t) in self.open_access_templates(tenant, None).await? {
            gallery.add(&id, &subject, &t)?;
        }
        Ok(gallery)
    }

    /// The tenant's gallery, brought up to date with every change made since it was loaded, by
    /// this node or any other on the same database (one indexed query when nothing changed):
    /// this is how two server processes on one PostgreSQL database stay in step.
    pub(crate) async fn current_gallery(&self, tenant: &str) -> Result<Shared, CoreError> {
        let existing = self
            .galleries
            .lock()
            .map_err(|_| CoreError::Internal("gallery map poisoned".into()))?
            .get(tenant)
            .cloned();
        let shared = match existing {
            Some(g) => g,
            None => {
                // Loaded without any lock; when two requests race, the first insert wins and
                // the other's load is dropped.
                let loaded = Arc::new(RwLock::new(self.load_gallery(tenant).await?));
                self.galleries
                    .lock()
                    .map_err(|_| CoreError::Internal("gallery map poisoned".into()))?
                    .entry(tenant.to_string())
                    .or_insert(loaded)
                    .clone()
            }
        };
        self.sync_gallery(tenant, &shared).await?;
        Ok(shared)
    }

    async fn sync_gallery(&self, tenant: &str, shared: &Shared) -> Result<(), CoreError> {
        let poisoned = || CoreError::Internal("gallery lock poisoned".into());
        let seq = shared.read().map_err(|_| poisoned())?.seq;
        let changes =
            store::gallery::since(&mut *self.db.pool().acquire().await?, tenant, seq).await?;
        if changes.is_empty() {
            return Ok(());
        }
        // All I/O first, with no lock held.
        let mut prepared = Vec::with_capacity(changes.len());
        for c in changes {
            let p = match c.op {
                Op::Add => {
                    let only = c.template.as_deref().unwrap_or("-");
                    Prepared::Add(self.open_access_templates(tenant, Some(only)).await?)
                }
                Op::RemoveSubject => Prepared::RemoveSubject(c.subject.unwrap_or_default()),
                Op::RemoveTemplate => Prepared::RemoveTemplate(c.template.unwrap_or_default()),
                Op::Reload => Prepared::Reload(Box::new(self.load_gallery(tenant).await?)),
            };
            prepared.push((c.seq, p));
        }
        // Then a short write lock: apply in feed order what no other sync applied yet.
        let mut g = shared.write().map_err(|_| poisoned())?;
        for (seq, p) in prepared {
            if seq <= g.seq {
                continue;
            }
            match p {
                Prepared::Add(opened) => {
                    for (id, subject, t) in opened {
                        g.add(&id, &subject, &t)?;
                    }
                }
                Prepared::RemoveSubject(subject) => g.remove_subject(&subject),
                Prepared::RemoveTemplate(template) => g.remove_template(&template),
                Prepared::Reload(fresh) => *g = *fresh,
            }
            g.seq = g.seq.max(seq);
        }
        Ok(())
    }
}
