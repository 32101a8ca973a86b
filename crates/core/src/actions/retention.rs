//! Retention: the sweep, and the restart of a template's period on each successful use.

use crate::audit::{self, Record, System};
use crate::core::now;
use crate::store::{self, gallery::Op, Conn};
use crate::{Core, CoreError};

/// How stale `last_used_at` may get before a match writes it again (one day).
const TOUCH_INTERVAL_SECS: i64 = 86_400;

impl Core {
    /// Deletes every template past its expiry (all tenants: a maintenance job, no read path).
    /// Returns how many were deleted. Each deleted access template is named in its tenant's
    /// gallery feed, so every node drops just those on its next identify (no reloads).
    pub async fn sweep_expired(&self) -> Result<u64, CoreError> {
        self.sweep_expired_at(now()).await
    }

    /// [`sweep_expired`](Self::sweep_expired) as if the time were `at` (Unix seconds).
    pub async fn sweep_expired_at(&self, at: i64) -> Result<u64, CoreError> {
        let mut tx = self.db.begin_write().await?;
        let gone = store::templates::delete_expired(&mut tx, at).await?;
        let mut per_tenant: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
        for t in &gone {
            let n = per_tenant.entry(t.tenant.as_str()).or_default();
            if t.purpose == "access" {
                n.0 += 1;
                store::gallery::record(&mut tx, &t.tenant, Op::RemoveTemplate, Some(&t.id), None)
                    .await?;
            } else {
                n.1 += 1;
            }
        }
        self.sweep_checkins(&mut tx, at).await?;
        // One entry per tenant that lost templates, in that tenant's own log.
        for (tenant, (access, verification)) in per_tenant {
            let r = Record::ok("retention.sweep", None).detail(format!(
                "access_templates={access} verification_templates={verification}"
            ));
            audit::record_system(&mut tx, tenant, System::Sweep, r).await?;
        }
        tx.commit().await?;
        Ok(gone.len() as u64)
    }

    /// Records a successful use of a template: its retention period starts again from now (the
    /// period is kept as `expires_at - last_used_at`, set at enrolment from the consent). At
    /// most one write a day per template, so a busy gate does not turn every match into a
    /// write.
    pub(crate) async fn touch_template(
        &self,
        c: &mut Conn,
        tenant: &str,
        template: &str,
        last_used: i64,
    ) -> Result<(), CoreError> {
        let t = now();
        if t - last_used < TOUCH_INTERVAL_SECS {
            return Ok(());
        }
        store::templates::touch(c, tenant, template, last_used, t).await?;
        Ok(())
    }
}
