//! Consents: grant (with a signed receipt) and withdraw.

use crate::audit::{self, Record};
use crate::core::{new_id, now, MAX_RETENTION_DAYS};
use crate::store::{self, consents::NewConsent, gallery::Op};
use crate::{ConsentReceipt, Core, CoreError, Principal, Purpose, Role};

impl Core {
    /// The caller's tenant's receipt key (hex): what a receipt is verified against.
    pub fn receipt_public_key(&self, p: &Principal) -> String {
        self.keys
            .receipt_key(&p.tenant)
            .verifying_key()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Records consent for a purpose and returns the signed receipt.
    pub async fn grant_consent(
        &self,
        p: &Principal,
        subject: &str,
        purpose: Purpose,
        retention_days: i64,
    ) -> Result<ConsentReceipt, CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        if !(1..=MAX_RETENTION_DAYS).contains(&retention_days) {
            return Err(CoreError::Invalid(format!(
                "retention_days must be 1 to {MAX_RETENTION_DAYS}"
            )));
        }
        let receipt = ConsentReceipt {
            consent_id: new_id(),
            tenant_id: p.tenant.clone(),
            subject_id: subject.to_string(),
            purpose: purpose.as_str().to_string(),
            retention_days,
            granted_at: now(),
            public_key: String::new(),
            signature: String::new(),
        }
        .sign(&self.keys.receipt_key(&p.tenant));
        let mut tx = self.db.begin_write().await?;
        self.subject_in_tenant(&mut tx, &p.tenant, subject).await?;
        let consent = NewConsent {
            id: &receipt.consent_id,
            subject,
            purpose: purpose.as_str(),
            retention_days,
            granted_at: receipt.granted_at,
            receipt: receipt.to_stored(),
        };
        store::consents::insert(&mut tx, &p.tenant, consent).await?;
        let r = Record::ok("consent.grant", Some(subject)).detail(format!(
            "consent={} purpose={} retention_days={retention_days}",
            receipt.consent_id,
            purpose.as_str()
        ));
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok(receipt)
    }

    /// Withdraws a consent. When no other active consent for the same purpose remains, the
    /// templates enrolled for that purpose are deleted in the same transaction.
    pub async fn withdraw_consent(
        &self,
        p: &Principal,
        subject: &str,
        consent: &str,
    ) -> Result<(), CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        let mut tx = self.db.begin_write().await?;
        let r = self
            .withdraw_in(&mut tx, &p.tenant, subject, consent)
            .await?;
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The withdrawal inside `tx`, for the caller to record: the record to append.
    pub(crate) async fn withdraw_in<'a>(
        &self,
        tx: &mut crate::store::Conn,
        tenant: &str,
        subject: &'a str,
        consent: &str,
    ) -> Result<Record<'a>, CoreError> {
        let purpose = store::consents::active_purpose(tx, tenant, subject, consent)
            .await?
            .ok_or(CoreError::NotFound)?;
        let purpose = Purpose::parse(&purpose)?;
        store::consents::withdraw(tx, tenant, consent, now()).await?;
        let still = match self.active_consent(tx, tenant, subject, purpose).await {
            Ok(_) => true,
            Err(CoreError::ConsentRequired) => false,
            Err(e) => return Err(e),
        };
        if !still && purpose == Purpose::Pass {
            self.revoke_passes_of(tx, tenant, subject).await?;
        }
        if !still {
            store::templates::delete_for_purpose(tx, tenant, subject, purpose.as_str()).await?;
            // A new data key for the templates kept: the deleted ones' copies stay closed.
            self.rekey_subject(tx, tenant, subject).await?;
            if purpose == Purpose::Access {
                store::gallery::record(tx, tenant, Op::RemoveSubject, None, Some(subject)).await?;
            }
        }
        Ok(
            Record::ok("consent.withdraw", Some(subject)).detail(format!(
                "consent={consent} purpose={} templates_deleted={}",
                purpose.as_str(),
                !still
            )),
        )
    }
}
