//! 1:1 verification.

use consentry_vault::KeyContext;

use crate::audit::{self, Record};
use crate::core::now;
use crate::store;
use crate::{Core, CoreError, Decision, Principal, Role};

/// How many templates a verification compares with: the subject's most recent live ones, and
/// decoys when it has fewer (or none, or does not exist), so every verification unwraps one
/// key and opens this many templates whatever the subject's state.
pub(crate) const VERIFY_SLOTS: usize = 5;

impl Core {
    /// 1:1: does the face in `image` belong to `subject`? Compares against the subject's live
    /// verification templates in the caller's tenant (at most [`VERIFY_SLOTS`], newest first).
    /// Every deny path does the same work: the same two queries, one key unwrap, the same number
    /// of template opens and comparisons.
    pub async fn verify(
        &self,
        p: &Principal,
        subject: &str,
        image: Vec<u8>,
    ) -> Result<Decision, CoreError> {
        p.require(&[Role::Admin, Role::Operator, Role::Device])?;
        let raw = self.probe(image).await?;

        let mut c = self.db.pool().acquire().await?;
        let purpose = crate::Purpose::Verification;
        let (generation, required) =
            store::tenants::verify_settings(&mut c, &p.tenant, purpose.as_str()).await?;
        // Before anything about the subject is read: the same refusal for everyone.
        let liveness = self
            .liveness_if_required(p, subject, purpose, &raw, required)
            .await?;
        let wrapped = store::data_keys::wrapped(&mut c, &p.tenant, subject).await?;
        let mut rows = store::templates::live_verification(
            &mut c,
            &p.tenant,
            subject,
            self.template_model(),
            now(),
        )
        .await?;
        drop(c);
        rows.truncate(VERIFY_SLOTS);
        let probe = self.transform(&p.tenant, generation).apply(&raw)?;

        let ctx = KeyContext {
            tenant: &p.tenant,
            subject,
        };
        let key = match &wrapped {
            Some((kek_id, w)) => Some(self.keys.unwrap(kek_id, ctx, w)?),
            None => {
                // The same unwrap, of a decoy that never opens.
                self.unwrap_decoy(ctx);
                None
            }
        };
        let mut best: Option<(f32, usize)> = None;
        for slot in 0..VERIFY_SLOTS {
            let template = match (rows.get(slot), &key) {
                (Some(row), Some(key)) => {
                    match key.open_template(row.context(&p.tenant), &row.sealed) {
                        Ok(t) => Some(t),
                        Err(_) => {
                            // A row edited behind the server's back (its purpose, model, retention
                            // or ids): refused, never compared.
                            tracing::warn!("a verification template does not open; refused");
                            None
                        }
                    }
                }
                _ => {
                    // A decoy open and comparison in place of a missing template.
                    let decoy = self.decoy.open()?;
                    let _ = std::hint::black_box(dot(&decoy, &probe));
                    None
                }
            };
            if let Some(t) = template {
                let score = dot(&t, &probe);
                if best.is_none_or(|(b, _)| score > b) {
                    best = Some((score, slot));
                }
            }
        }
        let allow = best.is_some_and(|(score, _)| score >= self.engine.default_threshold());
        // Every decision is recorded (the claimed id and allow or deny, never a score), in the
        // transaction that restarts the matched template's retention.
        let mut tx = self.db.begin_write().await?;
        if let (true, Some((_, slot))) = (allow, best) {
            if let Some(row) = rows.get(slot) {
                self.touch_template(&mut tx, &p.tenant, &row.id, row.last_used_at)
                    .await?;
            }
        }
        let r = Record {
            action: "verify",
            target: Some(subject),
            outcome: if allow { "allow" } else { "deny" },
            detail: None,
        };
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok(Decision { allow, liveness })
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
