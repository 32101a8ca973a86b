//! API keys: issue, list, revoke, rotate, suspend and reinstate, authenticate.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::{self, Record};
use crate::core::{new_id, now};
use crate::store::{self, keys::NewKey, Conn};
use crate::{Core, CoreError, Principal, Role};

/// The longest expiry a key may be given: ten years.
pub const MAX_KEY_DAYS: i64 = 3650;

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

/// What to issue a key for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRequest {
    /// Its role.
    pub role: Role,
    /// Days until it stops working (1 to [`MAX_KEY_DAYS`]); none for no expiry.
    pub expires_in_days: Option<i64>,
    /// The site a device key serves (a gate, a kiosk): recorded with each of its decisions.
    pub site: Option<String>,
}

impl KeyRequest {
    /// A key of `role` with no expiry and no site.
    pub fn role(role: Role) -> KeyRequest {
        KeyRequest {
            role,
            expires_in_days: None,
            site: None,
        }
    }

    fn validate(&self) -> Result<(), CoreError> {
        if self
            .expires_in_days
            .is_some_and(|d| !(1..=MAX_KEY_DAYS).contains(&d))
        {
            return Err(CoreError::Invalid(format!(
                "expires_in_days must be 1 to {MAX_KEY_DAYS}"
            )));
        }
        if let Some(site) = &self.site {
            if self.role != Role::Device {
                return Err(CoreError::Invalid("only device keys have a site".into()));
            }
            let ok = (1..=100).contains(&site.len())
                && site
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !ok {
                return Err(CoreError::Invalid(
                    "a site is 1 to 100 letters, digits, '-', '_' or '.'".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A key as an admin sees it: never the secret, nor its hash.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyView {
    /// The key's id.
    pub id: String,
    /// Its role.
    pub role: String,
    /// `active`, `expired`, `revoked` or `suspended`.
    pub status: &'static str,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    /// Unix seconds.
    pub revoked_at: Option<i64>,
    /// A device key's site.
    pub site: Option<String>,
    /// Unix seconds.
    pub suspended_at: Option<i64>,
    /// The rule that suspended it.
    pub suspended_reason: Option<String>,
}

fn status(row: &store::keys::KeyRow, t: i64) -> &'static str {
    if row.revoked_at.is_some() {
        "revoked"
    } else if row.expires_at.is_some_and(|e| e <= t) {
        "expired"
    } else if row.suspended_at.is_some() {
        "suspended"
    } else {
        "active"
    }
}

/// Stores a key's hash for `tenant`; returns the key's id.
pub(crate) async fn insert_key(
    c: &mut Conn,
    tenant: &str,
    req: &KeyRequest,
    key: &str,
) -> Result<String, CoreError> {
    let id = new_id();
    let t = now();
    let row = NewKey {
        id: &id,
        role: req.role.as_str(),
        hash: &key_hash(key),
        at: t,
        expires_at: req.expires_in_days.map(|d| t + d * 86_400),
        site: req.site.as_deref(),
    };
    store::keys::insert(c, tenant, row).await?;
    Ok(id)
}

fn describe(req: &KeyRequest) -> String {
    let mut d = format!("role={}", req.role.as_str());
    if let Some(days) = req.expires_in_days {
        d.push_str(&format!(" expires_in_days={days}"));
    }
    if let Some(site) = &req.site {
        d.push_str(&format!(" site={site}"));
    }
    d
}

impl Core {
    /// Issues another key of `role` for the caller's tenant, with no expiry (admins only).
    pub async fn create_api_key(&self, p: &Principal, role: Role) -> Result<String, CoreError> {
        Ok(self.issue_key(p, &KeyRequest::role(role)).await?.1)
    }

    /// Issues a key (admins only): returns its id and the key, shown this once.
    pub async fn issue_key(
        &self,
        p: &Principal,
        req: &KeyRequest,
    ) -> Result<(String, String), CoreError> {
        p.require(&[Role::Admin])?;
        req.validate()?;
        let key = new_key();
        let mut tx = self.db.begin_write().await?;
        let id = insert_key(&mut tx, &p.tenant, req, &key).await?;
        let r = Record::ok("key.create", Some(&id)).detail(describe(req));
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok((id, key))
    }

    /// The tenant's keys (admins only).
    pub async fn list_keys(&self, p: &Principal) -> Result<Vec<KeyView>, CoreError> {
        p.require(&[Role::Admin])?;
        let rows = store::keys::list(&mut *self.db.pool().acquire().await?, &p.tenant).await?;
        let t = now();
        Ok(rows
            .into_iter()
            .map(|r| KeyView {
                status: status(&r, t),
                id: r.id,
                role: r.role,
                created_at: r.created_at,
                expires_at: r.expires_at,
                revoked_at: r.revoked_at,
                site: r.site,
                suspended_at: r.suspended_at,
                suspended_reason: r.suspended_reason,
            })
            .collect())
    }

    /// Revokes a key for good (admins only; not the caller's own key, so a tenant always
    /// keeps the admin key that acts). Revoking a key that is already revoked changes nothing
    /// and is not an error (a DELETE that is repeated, or that follows a rotation).
    pub async fn revoke_key(&self, p: &Principal, id: &str) -> Result<(), CoreError> {
        p.require(&[Role::Admin])?;
        if id == p.key {
            return Err(CoreError::Invalid(
                "a key cannot revoke itself; use another admin key".into(),
            ));
        }
        let mut tx = self.db.begin_write().await?;
        if !store::keys::revoke(&mut tx, &p.tenant, id, now()).await? {
            return match store::keys::get(&mut tx, &p.tenant, id).await? {
                Some(_) => Ok(()),
                None => Err(CoreError::NotFound),
            };
        }
        audit::record(&mut tx, p, Record::ok("key.revoke", Some(id))).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a live key with a new one of the same role, site and remaining expiry; the
    /// old one is revoked in the same transaction (admins only).
    pub async fn rotate_key(&self, p: &Principal, id: &str) -> Result<(String, String), CoreError> {
        p.require(&[Role::Admin])?;
        let mut tx = self.db.begin_write().await?;
        let old = store::keys::get(&mut tx, &p.tenant, id)
            .await?
            .ok_or(CoreError::NotFound)?;
        let t = now();
        // It exists, so not `not_found`: it can no longer be rotated.
        if status(&old, t) == "revoked" || status(&old, t) == "expired" {
            return Err(CoreError::Invalid(
                "only a live key can be rotated; this one is revoked or expired".into(),
            ));
        }
        let role = Role::parse(&old.role).ok_or(CoreError::NotFound)?;
        let key = new_key();
        let new_id = new_id();
        let row = NewKey {
            id: &new_id,
            role: role.as_str(),
            hash: &key_hash(&key),
            at: t,
            expires_at: old.expires_at,
            site: old.site.as_deref(),
        };
        store::keys::insert(&mut tx, &p.tenant, row).await?;
        store::keys::revoke(&mut tx, &p.tenant, id, t).await?;
        let r = Record::ok("key.rotate", Some(id)).detail(format!("new_key={new_id}"));
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok((new_id, key))
    }

    /// Lifts a key's suspension (admins only).
    pub async fn reinstate_key(&self, p: &Principal, id: &str) -> Result<(), CoreError> {
        p.require(&[Role::Admin])?;
        let mut tx = self.db.begin_write().await?;
        if !store::keys::reinstate(&mut tx, &p.tenant, id, now()).await? {
            return Err(CoreError::NotFound);
        }
        audit::record(&mut tx, p, Record::ok("key.reinstate", Some(id))).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Resolves a bearer key to its tenant and role. A key that was revoked, has expired or
    /// is suspended says so (its holder knows the key already: nothing is revealed).
    pub async fn authenticate(&self, key: &str) -> Result<Principal, CoreError> {
        if !key.starts_with("cs_") || key.len() != 67 {
            return Err(CoreError::Unauthorized);
        }
        let hash = key_hash(key);
        let row = store::keys::by_hash(&mut *self.db.pool().acquire().await?, &hash)
            .await?
            .ok_or(CoreError::Unauthorized)?;
        let same: bool = row.key_hash.ct_eq(&hash).into();
        if !same {
            return Err(CoreError::Unauthorized);
        }
        match status(&row, now()) {
            "revoked" => return Err(CoreError::KeyRevoked),
            "expired" => return Err(CoreError::KeyExpired),
            "suspended" => return Err(CoreError::KeySuspended),
            _ => {}
        }
        let role = Role::parse(&row.role).ok_or(CoreError::Unauthorized)?;
        Ok(Principal {
            key: row.id,
            tenant: row.tenant,
            role,
            site: row.site,
            request_id: new_id(),
            purpose: None,
            liveness: None,
            reinstated_at: row.reinstated_at,
        })
    }
}
