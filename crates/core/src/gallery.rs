//! Each tenant's in-memory 1:N gallery, loaded from the vault and kept in step with every node's
//! changes through the `gallery_changes` feed.

use std::collections::HashMap;

use consentry_index::{FlatIndex, Index};
use consentry_vault::{KeyContext, TemplateContext, WrappedKey};

use crate::core::now;
use crate::store::{self, gallery::Op};
use crate::{Core, CoreError};

/// One tenant's in-memory gallery of access templates (transformed, never raw embeddings).
pub(crate) struct Gallery {
    pub(crate) index: FlatIndex,
    /// The last change of `gallery_changes` applied.
    pub(crate) seq: i64,
    next: u64,
    pub(crate) by_key: HashMap<u64, (String, String)>,
    by_template: HashMap<String, u64>,
}

impl Gallery {
    fn new(dim: usize) -> Self {
        Gallery {
            index: FlatIndex::new(dim),
            seq: 0,
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

impl Core {
    /// Access templates of a tenant (or only `only`) with an active access consent, opened
    /// with their subjects' data keys and added to `gallery`.
    async fn open_access_templates(
        &self,
        tenant: &str,
        only: Option<&str>,
        gallery: &mut Gallery,
    ) -> Result<(), CoreError> {
        let mut c = self.db.pool().acquire().await?;
        let rows =
            store::templates::live_access(&mut c, tenant, only, self.template_model(), now())
                .await?;
        drop(c);
        let kek = self.keys.kek(tenant);
        for row in rows {
            let ctx = KeyContext {
                tenant,
                subject: &row.subject,
            };
            let key = kek.unwrap(&WrappedKey(row.wrapped), ctx)?;
            let ctx = TemplateContext {
                tenant,
                subject: &row.subject,
                template: &row.id,
            };
            let template = key.open_template(ctx, &row.sealed)?;
            gallery.add(&row.id, &row.subject, &template)?;
        }
        Ok(())
    }

    /// Loads a tenant's whole gallery from the vault. The change sequence is read first, so a
    /// change committed during the load is applied again afterwards (applying is idempotent).
    pub(crate) async fn load_gallery(&self, tenant: &str) -> Result<Gallery, CoreError> {
        let seq = store::gallery::last_seq(&mut *self.db.pool().acquire().await?).await?;
        let mut gallery = Gallery::new(self.engine.models().models().1.dim());
        gallery.seq = seq;
        self.open_access_templates(tenant, None, &mut gallery)
            .await?;
        Ok(gallery)
    }

    /// Brings a gallery up to date with the changes made since it was loaded, by this node or
    /// any other on the same database: one indexed query when nothing changed. This is how two
    /// server processes on one PostgreSQL database stay in step.
    pub(crate) async fn sync_gallery(
        &self,
        tenant: &str,
        gallery: &mut Gallery,
    ) -> Result<(), CoreError> {
        let changes =
            store::gallery::since(&mut *self.db.pool().acquire().await?, tenant, gallery.seq)
                .await?;
        for c in changes {
            match c.op {
                Op::Add => {
                    let only = c.template.as_deref().unwrap_or("-");
                    self.open_access_templates(tenant, Some(only), gallery)
                        .await?;
                }
                Op::RemoveSubject => {
                    if let Some(subject) = &c.subject {
                        gallery.remove_subject(subject);
                    }
                }
                Op::Reload => *gallery = self.load_gallery(tenant).await?,
            }
            gallery.seq = gallery.seq.max(c.seq);
        }
        Ok(())
    }
}
