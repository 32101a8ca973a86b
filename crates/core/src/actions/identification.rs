//! 1:N identification at a gate.

use consentry_index::Index;

use crate::core::now;
use crate::store;
use crate::{Core, CoreError, Identification, Principal};

impl Core {
    /// 1:N at a gate: is this face one of the tenant's consenting, enrolled people? Searches the
    /// tenant's own gallery only. A face that matches no one is dropped here: nothing about it
    /// is stored or logged, only the `deny` is returned.
    pub async fn identify(
        &self,
        p: &Principal,
        image: Vec<u8>,
    ) -> Result<Identification, CoreError> {
        let probe = self.probe(&p.tenant, image).await?;
        let best = {
            // One async lock: a gallery is loaded once, and changes are applied in order.
            let mut galleries = self.galleries.lock().await;
            let gallery = match galleries.entry(p.tenant.clone()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(self.load_gallery(&p.tenant).await?)
                }
            };
            self.sync_gallery(&p.tenant, gallery).await?;
            gallery
                .index
                .search(&probe, 1)
                .into_iter()
                .next()
                .and_then(|hit| {
                    gallery
                        .by_key
                        .get(&hit.id)
                        .map(|(t, s)| (t.clone(), s.clone(), hit.score))
                })
        };
        let deny = |score| Identification {
            allow: false,
            subject: None,
            score,
        };
        let Some((template, subject, score)) = best else {
            return Ok(deny(0.0));
        };
        if score < self.engine.default_threshold() {
            return Ok(deny(score));
        }
        // The database has the last word: a template deleted, expired or without consent (on
        // this node or another) never grants access, whatever the in-memory index holds.
        let live = store::templates::access_last_used(
            &mut *self.db.pool().acquire().await?,
            &p.tenant,
            &template,
            now(),
        )
        .await?;
        let Some(last_used) = live else {
            return Ok(deny(0.0));
        };
        self.touch_template(&p.tenant, &template, last_used).await?;
        Ok(Identification {
            allow: true,
            subject: Some(subject),
            score,
        })
    }
}
