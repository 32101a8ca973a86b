//! Cards and PINs: equal to the face in the access decision.

use crate::audit::{self, Record};
use crate::core::{new_id, now};
use crate::store;
use crate::{Core, CoreError, Credential, Identification, Principal, Role};

/// The window over which failed card/PIN attempts are counted: 15 minutes.
pub const FAILURE_WINDOW_SECS: i64 = 15 * 60;

/// Failed card/PIN attempts one key may make in the window. A device guessing six-digit PINs
/// gets at most 960 tries a day: against a tenant of 1,000 people with PINs, an expected 1,000
/// tries (more than a day) per lucky guess, and every failure is on record.
pub const MAX_FAILURES_PER_KEY: i64 = 10;

/// Failed card/PIN attempts all of a tenant's keys together may make in the window.
pub const MAX_FAILURES_PER_TENANT: i64 = 200;

impl Core {
    /// Registers a card or PIN for a subject; each is unique within the tenant.
    pub async fn add_credential(
        &self,
        p: &Principal,
        subject: &str,
        credential: &Credential,
    ) -> Result<String, CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        credential.validate()?;
        let lookup = credential.lookup(&self.keys.credential_key(&p.tenant));
        let id = new_id();
        let mut tx = self.db.begin_write().await?;
        self.subject_in_tenant(&mut tx, &p.tenant, subject).await?;
        if store::credentials::taken(&mut tx, &p.tenant, &lookup).await? {
            return Err(CoreError::AlreadyExists("that credential"));
        }
        let kind = credential.kind();
        store::credentials::insert(&mut tx, &p.tenant, &id, subject, kind, &lookup, now()).await?;
        let r = Record::ok("credential.add", Some(subject))
            .detail(format!("credential={id} kind={kind}"));
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The access decision from a card or a PIN: the same shape as [`identify`](Self::identify).
    ///
    /// Guessing is limited: a key with [`MAX_FAILURES_PER_KEY`] failed attempts in the last
    /// [`FAILURE_WINDOW_SECS`] is refused with `too_many_attempts` (429) until the oldest of
    /// them leaves the window, and so is every key of a tenant whose keys together failed
    /// [`MAX_FAILURES_PER_TENANT`] times (many devices guessing at once). The count is checked
    /// before the lookup, so a locked-out key learns nothing, not even from a right guess.
    pub async fn decide_credential(
        &self,
        p: &Principal,
        credential: &Credential,
    ) -> Result<Identification, CoreError> {
        p.require(&[Role::Admin, Role::Operator, Role::Device])?;
        let t = now();
        let since = t - FAILURE_WINDOW_SECS;
        let mut c = self.db.pool().acquire().await?;
        if store::credential_failures::by_key_since(&mut c, &p.tenant, &p.key, since).await?
            >= MAX_FAILURES_PER_KEY
            || store::credential_failures::by_tenant_since(&mut c, &p.tenant, since).await?
                >= MAX_FAILURES_PER_TENANT
        {
            return Err(CoreError::TooManyAttempts);
        }
        let subject = if credential.validate().is_ok() {
            let lookup = credential.lookup(&self.keys.credential_key(&p.tenant));
            store::credentials::subject_by_lookup(&mut c, &p.tenant, credential.kind(), &lookup)
                .await?
        } else {
            None
        };
        drop(c);
        let mut tx = self.db.begin_write().await?;
        let mut alert = None;
        if subject.is_none() {
            store::credential_failures::record(&mut tx, &p.tenant, &p.key, t, since).await?;
        }
        let r = Record {
            action: "access.decide",
            target: subject.as_deref(),
            outcome: if subject.is_some() { "allow" } else { "deny" },
            detail: Some(format!("by={}", credential.kind())),
        };
        audit::record(&mut tx, p, r).await?;
        if subject.is_none() {
            // The decision first, then (when this failure reached the limit) the suspension.
            alert = self.check_credential_failures(&mut tx, p).await?;
        }
        tx.commit().await?;
        if let Some(a) = alert {
            self.send_alert(a);
        }
        Ok(Identification {
            allow: subject.is_some(),
            subject,
        })
    }
}
