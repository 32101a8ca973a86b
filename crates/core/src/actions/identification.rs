//! 1:N identification at a gate.

use consentry_index::Index;

use crate::audit::{self, Record};
use crate::core::now;
use crate::store;
use crate::{Core, CoreError, Identification, Principal, Role};

/// How many of the nearest templates identification checks against the database, best first.
const IDENTIFY_CANDIDATES: usize = 8;

impl Core {
    /// 1:N at a gate: is this face one of the tenant's consenting, enrolled people? Searches the
    /// tenant's own gallery only. A face that matches no one is dropped here: nothing about it
    /// is stored or logged, only the `deny` is returned.
    pub async fn identify(
        &self,
        p: &Principal,
        image: Vec<u8>,
    ) -> Result<Identification, CoreError> {
        p.require(&[Role::Admin, Role::Operator, Role::Device])?;
        self.check_identify_hours(p).await?;
        let raw = self.probe(image).await?;
        let threshold = self.engine.default_threshold();
        let gallery = self.current_gallery(&p.tenant).await?;
        // Every template above the threshold among the best few, best first: the best one may
        // be expired or withdrawn on another node and not yet gone from this index, and must
        // not hide a live template of the same (or another) person below it.
        let candidates: Vec<(String, String)> = {
            let g = gallery
                .read()
                .map_err(|_| CoreError::Internal("gallery lock poisoned".into()))?;
            // The probe in the generation of the templates in this gallery.
            let probe = self.transform(&p.tenant, g.generation).apply(&raw)?;
            g.index
                .search(&probe, IDENTIFY_CANDIDATES)
                .into_iter()
                .take_while(|hit| hit.score >= threshold)
                .filter_map(|hit| g.by_key.get(&hit.id).cloned())
                .collect()
        };
        // The database has the last word: a template deleted, expired or without consent (on
        // this node or another) never grants access, whatever the in-memory index holds.
        let mut c = self.db.pool().acquire().await?;
        let mut found = None;
        for (template, subject) in candidates {
            let live =
                store::templates::access_last_used(&mut c, &p.tenant, &template, now()).await?;
            if let Some(last_used) = live {
                found = Some((template, subject, last_used));
                break;
            }
        }
        drop(c);
        // The decision is recorded: the subject, or "no_match" with no target and nothing else
        // about the face.
        let mut tx = self.db.begin_write().await?;
        if let Some((template, _, last_used)) = &found {
            self.touch_template(&mut tx, &p.tenant, template, *last_used)
                .await?;
        }
        let subject = found.map(|(_, s, _)| s);
        let r = Record {
            action: "identify",
            target: subject.as_deref(),
            outcome: if subject.is_some() {
                "allow"
            } else {
                "no_match"
            },
            detail: None,
        };
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok(Identification {
            allow: subject.is_some(),
            subject,
        })
    }
}
