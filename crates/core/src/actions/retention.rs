//! Retention: the sweep, and the restart of a template's period on each successful use.

use crate::core::now;
use crate::store::{self, gallery::Op};
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
        for t in gone.iter().filter(|t| t.purpose == "access") {
            store::gallery::record(&mut tx, &t.tenant, Op::RemoveTemplate, Some(&t.id), None)
                .await?;
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
        tenant: &str,
        template: &str,
        last_used: i64,
    ) -> Result<(), CoreError> {
        let t = now();
        if t - last_used < TOUCH_INTERVAL_SECS {
            return Ok(());
        }
        let mut c = self.db.pool().acquire().await?;
        store::templates::touch(&mut c, tenant, template, last_used, t).await?;
        Ok(())
    }
}
