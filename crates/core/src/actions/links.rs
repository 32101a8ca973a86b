//! Scoped, short-lived links, and the person's own token.
//!
//! A link grants one action (`subject.read` or `subject.accesses`) on one subject for one
//! stated purpose, for at most [`MAX_LINK_MINUTES`], to the key that minted it and no other:
//! an operator opens a case, mints a link for that person's record, and the link, not a
//! standing permission, is what the read goes through. A use by another key, or after expiry,
//! fails and is in the log.
//!
//! A subject token lets the person read who accessed their record (and nothing else) without
//! an operator key. It is given at their first enrolment, or later by an admin (replacing the
//! earlier one), and is deleted with the subject.

use sha2::{Digest, Sha256};

use crate::audit::{self, Access, Record};
use crate::core::{new_id, now};
use crate::store::{self, links::NewLink};
use crate::{Core, CoreError, Principal, Role, SubjectView};

/// The longest a link lives.
pub const MAX_LINK_MINUTES: i64 = 60;

fn token(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        consentry_vault::key_to_hex(&consentry_vault::random_key()).as_str()
    )
}

pub(crate) fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A minted link: shown once.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MintedLink {
    /// The link's id (in the log).
    pub id: String,
    /// The token (`cl_…`), stored only as its hash.
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// What a link's use returns.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum LinkResult {
    /// `subject.read`.
    Subject(SubjectView),
    /// `subject.accesses`.
    Accesses {
        /// Newest first.
        accesses: Vec<Access>,
    },
}

impl Core {
    /// Mints a link for `action` on `subject` for `purpose`, valid for `minutes` (admins and
    /// operators; the link is bound to the caller's key).
    pub async fn mint_link(
        &self,
        p: &Principal,
        action: &str,
        subject: &str,
        purpose: &str,
        minutes: i64,
    ) -> Result<MintedLink, CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        let action = match action {
            "subject.read" => "subject.read",
            "subject.accesses" => "subject.accesses",
            _ => {
                return Err(CoreError::Invalid(
                    "action must be subject.read or subject.accesses".into(),
                ))
            }
        };
        if !(1..=MAX_LINK_MINUTES).contains(&minutes) {
            return Err(CoreError::Invalid(format!(
                "minutes must be 1 to {MAX_LINK_MINUTES}"
            )));
        }
        let purpose = p
            .clone()
            .with_purpose(Some(purpose))?
            .purpose
            .ok_or(CoreError::PurposeRequired)?;
        let id = new_id();
        let token = token("cl_");
        let t = now();
        let expires_at = t + minutes * 60;
        let mut tx = self.db.begin_write().await?;
        self.subject_in_tenant(&mut tx, &p.tenant, subject).await?;
        let row = NewLink {
            id: &id,
            hash: &hash(&token),
            key_id: &p.key,
            action,
            subject,
            purpose: &purpose,
            at: t,
            expires_at,
        };
        store::links::insert(&mut tx, &p.tenant, row).await?;
        let r = Record::ok("link.mint", Some(subject))
            .detail(format!("link={id} action={action} minutes={minutes}"));
        let minting = p.clone().with_purpose(Some(&purpose))?;
        audit::record(&mut tx, &minting, r).await?;
        tx.commit().await?;
        Ok(MintedLink {
            id,
            token,
            expires_at,
        })
    }

    /// Uses a link: the caller must be the key that minted it, before it expires. The action
    /// is done with the link's purpose and logged as usual; a refused use is logged too.
    pub async fn use_link(&self, p: &Principal, token: &str) -> Result<LinkResult, CoreError> {
        if !token.starts_with("cl_") || token.len() != 67 {
            return Err(CoreError::NotFound);
        }
        let mut c = self.db.pool().acquire().await?;
        let link = store::links::by_hash(&mut c, &p.tenant, &hash(token))
            .await?
            .ok_or(CoreError::NotFound)?;
        drop(c);
        let refusal = if link.key_id != p.key {
            Some(("wrong_key", CoreError::Forbidden))
        } else if link.expires_at <= now() {
            Some(("expired", CoreError::LinkExpired))
        } else {
            None
        };
        if let Some((outcome, err)) = refusal {
            let mut tx = self.db.begin_write().await?;
            let r = Record {
                action: "link.use",
                target: Some(&link.subject),
                outcome,
                detail: Some(format!("link={} action={}", link.id, link.action)),
            };
            audit::record(&mut tx, p, r).await?;
            tx.commit().await?;
            return Err(err);
        }
        let with_purpose = p.clone().with_purpose(Some(&link.purpose))?;
        match link.action.as_str() {
            "subject.read" => Ok(LinkResult::Subject(
                self.subject(&with_purpose, &link.subject).await?,
            )),
            _ => Ok(LinkResult::Accesses {
                accesses: self
                    .subject_accesses(&with_purpose, &link.subject, 100)
                    .await?,
            }),
        }
    }

    /// Gives the person a new token for reading their accesses, replacing any earlier one
    /// (admins only).
    pub async fn issue_subject_token(
        &self,
        p: &Principal,
        subject: &str,
    ) -> Result<String, CoreError> {
        p.require(&[Role::Admin])?;
        let token = token("st_");
        let mut tx = self.db.begin_write().await?;
        self.subject_in_tenant(&mut tx, &p.tenant, subject).await?;
        store::links::set_subject_token(&mut tx, &p.tenant, subject, &hash(&token), now()).await?;
        audit::record(&mut tx, p, Record::ok("subject.token", Some(subject))).await?;
        tx.commit().await?;
        Ok(token)
    }

    /// At enrolment: the person's first token, when they have none yet (admins and operators).
    pub async fn first_subject_token(
        &self,
        p: &Principal,
        subject: &str,
    ) -> Result<Option<String>, CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        let mut tx = self.db.begin_write().await?;
        if store::links::has_subject_token(&mut tx, &p.tenant, subject).await? {
            return Ok(None);
        }
        self.subject_in_tenant(&mut tx, &p.tenant, subject).await?;
        let token = token("st_");
        store::links::set_subject_token(&mut tx, &p.tenant, subject, &hash(&token), now()).await?;
        audit::record(&mut tx, p, Record::ok("subject.token", Some(subject))).await?;
        tx.commit().await?;
        Ok(Some(token))
    }

    /// The person's view of who accessed their record, with their own token.
    pub async fn accesses_by_subject_token(
        &self,
        token: &str,
        subject: &str,
        limit: u64,
    ) -> Result<Vec<Access>, CoreError> {
        if !token.starts_with("st_") || token.len() != 67 {
            return Err(CoreError::Unauthorized);
        }
        let mut c = self.db.pool().acquire().await?;
        let (tenant, own) = store::links::subject_by_token(&mut c, &hash(token))
            .await?
            .ok_or(CoreError::Unauthorized)?;
        drop(c);
        if own != subject {
            return Err(CoreError::Forbidden);
        }
        self.accesses_of(&tenant, subject, limit).await
    }
}
