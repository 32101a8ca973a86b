//! The person's own view and rights, with their subject token (`st_…`) instead of a key:
//! their record (consents, credentials, passes, template counts), withdrawal of a consent, an
//! export of everything held about them, and deletion of everything.
//!
//! An export lists what is held, never template bytes (no bulk export of templates, not even
//! to their owner: a template is useless to the person and valuable to anyone who takes it
//! from them). Every action is in the audit log, attributed to `subject` (role `subject`).

use crate::audit::{self, Access, Record};
use crate::core::now;
use crate::store;
use crate::{ConsentView, Core, CoreError};

/// A person signed in with their own token: one subject of one tenant.
#[derive(Clone, PartialEq, Eq)]
pub struct SelfPrincipal {
    /// The tenant.
    pub tenant: String,
    /// The subject.
    pub subject: String,
}

impl std::fmt::Debug for SelfPrincipal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfPrincipal")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// A card or PIN, as its holder sees it (never the number or the PIN).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CredentialInfo {
    /// Its id.
    pub id: String,
    /// `card` or `pin`.
    pub kind: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A template, as its owner sees it: what it is for and until when, never its bytes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TemplateInfo {
    /// Its id.
    pub id: String,
    /// `access` or `verification`.
    pub purpose: String,
    /// The model that made it (a face model, or the voice's `campplus_cn_en_common`).
    pub model: String,
    /// `face` or `voice`.
    pub modality: &'static str,
    /// Unix seconds: when it was last used (or made).
    pub last_used_at: i64,
    /// Unix seconds: when the retention sweep deletes it.
    pub expires_at: i64,
}

/// A pass, as its holder sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PassInfo {
    /// Its id.
    pub id: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The person's record, as shown to them.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SelfView {
    /// Subject id.
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Every consent, active or withdrawn.
    pub consents: Vec<ConsentView>,
    /// Cards and PINs.
    pub credentials: Vec<CredentialInfo>,
    /// Live passes.
    pub passes: Vec<PassInfo>,
    /// Face templates held (metadata only).
    pub templates: Vec<TemplateInfo>,
}

/// Everything held about the person (the export).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SelfExport {
    /// Unix seconds.
    pub exported_at: i64,
    /// The tenant that holds the record (the controller).
    pub tenant: String,
    /// The record.
    #[serde(flatten)]
    pub record: SelfView,
    /// Who acted on the record, newest first (at most 1000).
    pub accesses: Vec<Access>,
}

impl Core {
    /// Signs a person in with their token.
    pub async fn subject_sign_in(&self, token: &str) -> Result<SelfPrincipal, CoreError> {
        if !token.starts_with("st_") || token.len() != 67 {
            return Err(CoreError::Unauthorized);
        }
        let mut c = self.db.pool().acquire().await?;
        let (tenant, subject) =
            store::links::subject_by_token(&mut c, &crate::actions::links::hash(token))
                .await?
                .ok_or(CoreError::Unauthorized)?;
        Ok(SelfPrincipal { tenant, subject })
    }

    /// The person's record.
    pub async fn self_view(&self, sp: &SelfPrincipal) -> Result<SelfView, CoreError> {
        let mut c = self.db.pool().acquire().await?;
        let (tenant, subject) = (sp.tenant.as_str(), sp.subject.as_str());
        let created_at = store::subjects::created_at(&mut c, tenant, subject)
            .await?
            .ok_or(CoreError::Unauthorized)?;
        let consents = store::consents::list(&mut c, tenant, subject).await?;
        let credentials = store::credentials::of_subject(&mut c, tenant, subject)
            .await?
            .into_iter()
            .map(|(id, kind, created_at)| CredentialInfo {
                id,
                kind,
                created_at,
            })
            .collect();
        let passes = store::passes::live_of_subject(&mut c, tenant, subject, now())
            .await?
            .into_iter()
            .map(|(id, expires_at)| PassInfo { id, expires_at })
            .collect();
        let t = now();
        let templates = store::templates::of_subject(&mut c, tenant, subject)
            .await?
            .into_iter()
            .filter(|(row, _)| row.expires_at > t)
            .map(|(row, _)| TemplateInfo {
                id: row.id,
                purpose: row.purpose,
                modality: if row.model == consentry_voice::MODEL_NAME {
                    "voice"
                } else {
                    "face"
                },
                model: row.model,
                last_used_at: row.last_used_at,
                expires_at: row.expires_at,
            })
            .collect();
        Ok(SelfView {
            id: subject.to_string(),
            created_at,
            consents,
            credentials,
            passes,
            templates,
        })
    }

    /// Who acted on the person's record, newest first.
    pub async fn self_accesses(
        &self,
        sp: &SelfPrincipal,
        limit: u64,
    ) -> Result<Vec<Access>, CoreError> {
        self.accesses_of(&sp.tenant, &sp.subject, limit).await
    }

    /// Everything held about the person, as one document; the export is in the log.
    pub async fn self_export(&self, sp: &SelfPrincipal) -> Result<SelfExport, CoreError> {
        let record = self.self_view(sp).await?;
        let mut tx = self.db.begin_write().await?;
        let r = Record::ok("subject.export", Some(&sp.subject));
        audit::record_subject(&mut tx, &sp.tenant, r).await?;
        tx.commit().await?;
        let accesses = self
            .accesses_of(&sp.tenant, &sp.subject, crate::MAX_ENTRIES_PER_READ)
            .await?;
        Ok(SelfExport {
            exported_at: now(),
            tenant: sp.tenant.clone(),
            record,
            accesses,
        })
    }

    /// The person withdraws one of their consents (as an operator's withdrawal does: the last
    /// consent for a purpose takes that purpose's templates with it).
    pub async fn self_withdraw(&self, sp: &SelfPrincipal, consent: &str) -> Result<(), CoreError> {
        let mut tx = self.db.begin_write().await?;
        let r = self
            .withdraw_in(&mut tx, &sp.tenant, &sp.subject, consent)
            .await?;
        audit::record_subject(&mut tx, &sp.tenant, r).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The text of one of the person's own live passes, to show as its QR code.
    pub async fn self_pass_text(
        &self,
        sp: &SelfPrincipal,
        pass_id: &str,
    ) -> Result<String, CoreError> {
        self.live_pass_text(&sp.tenant, &sp.subject, pass_id).await
    }

    /// The person deletes everything: their record, consents, credentials, passes (revoked)
    /// and templates (their data key destroyed). Their token dies with the record.
    pub async fn self_delete(&self, sp: &SelfPrincipal) -> Result<(), CoreError> {
        let mut tx = self.db.begin_write().await?;
        let r = self.delete_in(&mut tx, &sp.tenant, &sp.subject).await?;
        audit::record_subject(&mut tx, &sp.tenant, r).await?;
        tx.commit().await?;
        Ok(())
    }
}
