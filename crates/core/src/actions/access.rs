//! Cards and PINs: equal to the face in the access decision.

use crate::core::{new_id, now};
use crate::store;
use crate::{Core, CoreError, Credential, Identification, Principal, Role};

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
        tx.commit().await?;
        Ok(id)
    }

    /// The access decision from a card or a PIN: the same shape as [`identify`](Self::identify).
    pub async fn decide_credential(
        &self,
        p: &Principal,
        credential: &Credential,
    ) -> Result<Identification, CoreError> {
        let deny = Identification {
            allow: false,
            subject: None,
        };
        if credential.validate().is_err() {
            return Ok(deny);
        }
        let lookup = credential.lookup(&self.keys.credential_key(&p.tenant));
        let subject = store::credentials::subject_by_lookup(
            &mut *self.db.pool().acquire().await?,
            &p.tenant,
            credential.kind(),
            &lookup,
        )
        .await?;
        Ok(match subject {
            Some(s) => Identification {
                allow: true,
                subject: Some(s),
            },
            None => deny,
        })
    }
}
