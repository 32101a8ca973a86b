//! 1:1 verification.

use consentry_vault::TemplateContext;

use crate::core::now;
use crate::store;
use crate::{Core, CoreError, Decision, Principal};

impl Core {
    /// 1:1: does the face in `image` belong to `subject`? Compares against the subject's live
    /// verification templates in the caller's tenant.
    pub async fn verify(
        &self,
        p: &Principal,
        subject: &str,
        image: Vec<u8>,
    ) -> Result<Decision, CoreError> {
        let probe = self.probe(&p.tenant, image).await?;

        let mut tx = self.db.pool().begin().await?;
        let deny = Decision {
            allow: false,
            score: 0.0,
        };
        let key = match self.data_key(&mut tx, &p.tenant, subject).await {
            Ok(k) => k,
            Err(CoreError::NotFound) => return Ok(deny),
            Err(e) => return Err(e),
        };
        let rows = store::templates::live_verification(
            &mut tx,
            &p.tenant,
            subject,
            self.template_model(),
            now(),
        )
        .await?;
        tx.commit().await?;
        let mut best = f32::NEG_INFINITY;
        let mut best_template = None;
        for row in rows {
            let ctx = TemplateContext {
                tenant: &p.tenant,
                subject,
                template: &row.id,
            };
            let template = key.open_template(ctx, &row.sealed)?;
            let score: f32 = template.iter().zip(&probe).map(|(a, b)| a * b).sum();
            if score > best {
                best = score;
                best_template = Some((row.id, row.last_used_at));
            }
        }
        let Some((template, last_used)) = best_template else {
            return Ok(deny);
        };
        let allow = best >= self.engine.default_threshold();
        if allow {
            self.touch_template(&p.tenant, &template, last_used).await?;
        }
        Ok(Decision { allow, score: best })
    }
}
