//! Subjects: create, show, delete.

use consentry_vault::KeyContext;

use crate::audit::{self, Record};
use crate::core::{new_id, now};
use crate::store::{self, gallery::Op};
use crate::{Core, CoreError, Principal, Role, SubjectView};

impl Core {
    /// Creates a subject with its own data key (stored wrapped by the tenant's KEK of the
    /// current epoch).
    pub async fn create_subject(&self, p: &Principal) -> Result<String, CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        let subject = new_id();
        let ctx = KeyContext {
            tenant: &p.tenant,
            subject: &subject,
        };
        let mut tx = self.db.begin_write().await?;
        let (kek_id, wrapped) = self
            .wrap_data_key(&mut tx, ctx, &consentry_vault::DataKey::generate())
            .await?;
        store::subjects::insert(&mut tx, &p.tenant, &subject, now()).await?;
        store::data_keys::insert(&mut tx, &subject, &kek_id, wrapped).await?;
        audit::record(&mut tx, p, Record::ok("subject.create", Some(&subject))).await?;
        tx.commit().await?;
        Ok(subject)
    }

    /// Deletes a subject: its data key is destroyed in the same transaction as its rows.
    /// Copies of the database taken before (a backup, a replica, free pages) still hold the
    /// wrapped key until the next key rotation destroys the epoch it is wrapped under (see
    /// `actions/rotation.rs`); from then on nothing opens the subject's templates.
    pub async fn delete_subject(&self, p: &Principal, subject: &str) -> Result<(), CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        let mut tx = self.db.begin_write().await?;
        // Before the rows go (the passes' rows go with the subject's): its live passes onto
        // the revocation list, or they would still open doors offline.
        let passes = self.revoke_passes_of(&mut tx, &p.tenant, subject).await?;
        store::data_keys::delete(&mut tx, &p.tenant, subject).await?;
        if !store::subjects::delete(&mut tx, &p.tenant, subject).await? {
            return Err(CoreError::NotFound);
        }
        store::gallery::record(&mut tx, &p.tenant, Op::RemoveSubject, None, Some(subject)).await?;
        let r =
            Record::ok("subject.delete", Some(subject)).detail(format!("passes_revoked={passes}"));
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A subject's consents and template counts. An operator must state why it reads the
    /// record ([`Principal::with_purpose`]); the read and its purpose are in the audit log, in
    /// the same transaction, and shown to the person ([`Core::subject_accesses`]).
    pub async fn subject(&self, p: &Principal, subject: &str) -> Result<SubjectView, CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        if p.role == Role::Operator && p.purpose.is_none() {
            return Err(CoreError::PurposeRequired);
        }
        let mut c = self.db.begin_write().await?;
        let created_at = store::subjects::created_at(&mut c, &p.tenant, subject)
            .await?
            .ok_or(CoreError::NotFound)?;
        let consents = store::consents::list(&mut c, &p.tenant, subject).await?;
        let model = self.template_model();
        let t = now();
        let tenant = p.tenant.as_str();
        let access =
            store::templates::count(&mut c, tenant, subject, Some("access"), model, true, t)
                .await?;
        let verification = store::templates::count(
            &mut c,
            tenant,
            subject,
            Some("verification"),
            model,
            true,
            t,
        )
        .await?;
        let other = store::templates::count(&mut c, tenant, subject, None, model, false, t).await?;
        audit::record(&mut c, p, Record::ok("subject.read", Some(subject))).await?;
        c.commit().await?;
        Ok(SubjectView {
            id: subject.to_string(),
            created_at,
            consents,
            access_templates: access,
            verification_templates: verification,
            other_model_templates: other,
        })
    }
}
