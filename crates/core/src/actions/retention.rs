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
        // Each subject that lost templates gets a new data key for those it keeps.
        let subjects: std::collections::BTreeSet<(&str, &str)> = gone
            .iter()
            .map(|t| (t.tenant.as_str(), t.subject.as_str()))
            .collect();
        for (tenant, subject) in subjects {
            self.rekey_subject(&mut tx, tenant, subject).await?;
        }
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
        store::liveness::sweep(&mut tx, at).await?;
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

    /// Moves a subject's templates back in time by `secs` (last use and expiry), sealed again
    /// over the new times: for tests and drills of retention, which cannot edit the columns
    /// (the envelope binds them).
    #[doc(hidden)]
    pub async fn backdate_templates(
        &self,
        p: &crate::Principal,
        subject: &str,
        secs: i64,
    ) -> Result<(), CoreError> {
        p.require(&[crate::Role::Admin])?;
        let mut tx = self.db.begin_write().await?;
        let key = self.data_key(&mut tx, &p.tenant, subject).await?;
        for (row, _) in store::templates::of_subject(&mut tx, &p.tenant, subject).await? {
            let opened = key.open_template(row.context(&p.tenant), &row.sealed)?;
            let (used, expires) = (row.last_used_at - secs, row.expires_at - secs);
            let ctx = consentry_vault::TemplateContext {
                last_used_at: used,
                expires_at: expires,
                ..row.context(&p.tenant)
            };
            let sealed = key.seal_template(ctx, &opened)?;
            store::templates::touch(
                &mut tx,
                &p.tenant,
                &row.id,
                &row.sealed,
                sealed,
                used,
                expires,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a successful use of a template: its retention period starts again from now (the
    /// period is kept as `expires_at - last_used_at`, set at enrolment from the consent). At
    /// most one write a day per template, so a busy gate does not turn every match into a
    /// write. Both times are bound into the envelope, which is sealed again over the new ones.
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
        let Some(row) = store::templates::one(c, tenant, template).await? else {
            return Ok(());
        };
        if row.last_used_at != last_used || row.expires_at <= t {
            return Ok(()); // another node touched it, or it expired meanwhile
        }
        let key = self.data_key(c, tenant, &row.subject).await?;
        let Ok(opened) = key.open_template(row.context(tenant), &row.sealed) else {
            return Ok(());
        };
        let expires_at = t + (row.expires_at - row.last_used_at);
        let renewed = consentry_vault::TemplateContext {
            last_used_at: t,
            expires_at,
            ..row.context(tenant)
        };
        let sealed = key.seal_template(renewed, &opened)?;
        store::templates::touch(c, tenant, template, &row.sealed, sealed, t, expires_at).await?;
        Ok(())
    }
}
