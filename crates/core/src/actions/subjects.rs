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
        let r = self.delete_in(&mut tx, &p.tenant, subject).await?;
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
        let voice = consentry_voice::MODEL_NAME;
        let voice_templates =
            store::templates::count(&mut c, tenant, subject, None, voice, true, t).await?;
        let other = store::templates::count(&mut c, tenant, subject, None, model, false, t).await?
            - voice_templates;
        audit::record(&mut c, p, Record::ok("subject.read", Some(subject))).await?;
        c.commit().await?;
        Ok(SubjectView {
            id: subject.to_string(),
            created_at,
            consents,
            access_templates: access,
            verification_templates: verification,
            voice_templates,
            other_model_templates: other,
        })
    }

    /// The deletion inside `tx`, for the caller to record: the record to append.
    pub(crate) async fn delete_in<'a>(
        &self,
        tx: &mut crate::store::Conn,
        tenant: &str,
        subject: &'a str,
    ) -> Result<Record<'a>, CoreError> {
        // Before the rows go (the passes' rows go with the subject's): its live passes onto
        // the revocation list, or they would still open doors offline.
        let passes = self.revoke_passes_of(tx, tenant, subject).await?;
        store::data_keys::delete(tx, tenant, subject).await?;
        if !store::subjects::delete(tx, tenant, subject).await? {
            return Err(CoreError::NotFound);
        }
        store::gallery::record(tx, tenant, Op::RemoveSubject, None, Some(subject)).await?;
        Ok(Record::ok("subject.delete", Some(subject)).detail(format!("passes_revoked={passes}")))
    }

    /// The tenant's newest subjects, at most `limit` (admins): ids and creation times only,
    /// for the admin console. The listing is in the log.
    pub async fn list_subjects(
        &self,
        p: &Principal,
        limit: u64,
    ) -> Result<Vec<(String, i64)>, CoreError> {
        p.require(&[Role::Admin])?;
        let limit = i64::try_from(limit.clamp(1, 1000)).unwrap_or(1);
        let mut tx = self.db.begin_write().await?;
        let rows = store::subjects::newest(&mut tx, &p.tenant, limit).await?;
        audit::record(&mut tx, p, Record::ok("subject.list", None)).await?;
        tx.commit().await?;
        Ok(rows)
    }
}
