//! API keys: issue and authenticate.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::{self, Record};
use crate::core::{new_id, now};
use crate::store::{self, Conn};
use crate::{Core, CoreError, Principal, Role};

/// A new API key: `cs_` and 256 random bits in hex.
pub(crate) fn new_key() -> String {
    format!(
        "cs_{}",
        consentry_vault::key_to_hex(&consentry_vault::random_key()).as_str()
    )
}

fn key_hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

/// Stores a key's hash for `tenant`; returns the key's id.
pub(crate) async fn insert_key(
    c: &mut Conn,
    tenant: &str,
    role: Role,
    key: &str,
) -> Result<String, CoreError> {
    let id = new_id();
    store::keys::insert(c, tenant, &id, role.as_str(), &key_hash(key), now()).await?;
    Ok(id)
}

impl Core {
    /// Issues another key for the caller's tenant (admins only).
    pub async fn create_api_key(&self, p: &Principal, role: Role) -> Result<String, CoreError> {
        p.require(&[Role::Admin])?;
        let key = new_key();
        let mut tx = self.db.begin_write().await?;
        let id = insert_key(&mut tx, &p.tenant, role, &key).await?;
        let r = Record::ok("key.create", Some(&id)).detail(format!("role={}", role.as_str()));
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok(key)
    }

    /// Resolves a bearer key to its tenant and role.
    pub async fn authenticate(&self, key: &str) -> Result<Principal, CoreError> {
        if !key.starts_with("cs_") || key.len() != 67 {
            return Err(CoreError::Unauthorized);
        }
        let hash = key_hash(key);
        let row = store::keys::by_hash(&mut *self.db.pool().acquire().await?, &hash)
            .await?
            .ok_or(CoreError::Unauthorized)?;
        let same: bool = row.key_hash.ct_eq(&hash).into();
        if !same || row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now()) {
            return Err(CoreError::Unauthorized);
        }
        let role = Role::parse(&row.role).ok_or(CoreError::Unauthorized)?;
        Ok(Principal {
            key: row.id,
            tenant: row.tenant,
            role,
            request_id: new_id(),
            purpose: None,
        })
    }
}
