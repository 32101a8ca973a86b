//! Passes: issue, re-sign for a QR code, revoke, rotate the signing key, the public trust and
//! revocation lists, and venue check-ins.
//!
//! A pass carries no personal data: a pseudonym that differs per verifier, the permission, the
//! validity period and a random pass id (see `consentry_pass`). The database keeps only its
//! claims; the signed text is made again from them when a QR code is asked for (Ed25519 and
//! the encoding are deterministic, so it is the same text). Deleting the subject, or
//! withdrawing their `pass` consent, revokes their live passes in the same transaction.

use consentry_pass::{self as pass, Alg, PassClaims, PassKey, RevocationList, TrustList};

use crate::audit::{self, Record, System};
use crate::core::{new_id, now};
use crate::store::{self, passes::PassRow, Conn};
use crate::{Core, CoreError, Principal, Purpose, Role};

/// A pass is valid this many days unless the request says otherwise.
pub const DEFAULT_PASS_DAYS: i64 = 30;
/// The longest a pass may be valid.
pub const MAX_PASS_DAYS: i64 = 365;
/// Check-ins are deleted this long after they were made, unless configured otherwise
/// ([`Core::set_checkin_retention_days`]).
pub const CHECKIN_RETENTION_DAYS: i64 = 14;
/// The longest a check-in may be kept.
pub const MAX_CHECKIN_RETENTION_DAYS: i64 = 365;

/// An issued pass.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IssuedPass {
    /// Its id (what a revocation names).
    pub pass_id: String,
    /// `CS1:…`.
    pub pass: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A check-in: what was recorded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CheckIn {
    /// Always `allow` (a refused pass is an error with its code).
    pub decision: &'static str,
    /// The venue (the device key's site).
    pub venue: String,
    /// The person's pseudonym at this venue.
    pub pseudonym: String,
    /// Unix seconds.
    pub at: i64,
}

/// A name of a site, venue or permission: 1 to 100 letters, digits, `-`, `_` or `.`.
fn name(what: &str, v: &str) -> Result<(), CoreError> {
    let ok = (1..=100).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(CoreError::Invalid(format!(
            "{what} must be 1 to 100 letters, digits, '-', '_' or '.'"
        )))
    }
}

impl Core {
    fn pass_claims(&self, tenant: &str, id: &str, row: &PassRow) -> PassClaims {
        PassClaims {
            issuer: audit::origin(tenant),
            subject: pass::pseudonym(
                &self.keys.pass_pseudonym_secret(tenant),
                &row.subject,
                &row.verifier,
            ),
            verifier: row.verifier.clone(),
            access: row.access.clone(),
            issued_at: row.issued_at,
            not_before: row.issued_at,
            expires_at: row.expires_at,
            pass_id: id.to_string(),
        }
    }

    /// The tenant's pass-signing key of `epoch` for `alg`.
    fn pass_key(&self, tenant: &str, epoch: i64, alg: Alg) -> Result<PassKey, CoreError> {
        match alg {
            Alg::EdDSA => Ok(PassKey::Ed25519(self.keys.pass_key(tenant, epoch))),
            Alg::ES256 => PassKey::p256_from_bytes(&self.keys.pass_key_es256(tenant, epoch))
                .ok_or_else(|| CoreError::Internal("the derived P-256 key is not a scalar".into())),
        }
    }

    fn sign_pass(&self, tenant: &str, id: &str, row: &PassRow) -> Result<String, CoreError> {
        let alg = Alg::parse(&row.alg)
            .ok_or_else(|| CoreError::Internal(format!("stored pass algorithm {}", row.alg)))?;
        let key = self.pass_key(tenant, row.epoch, alg)?;
        pass::issue(&self.pass_claims(tenant, id, row), &key)
            .map_err(|e| CoreError::Internal(format!("pass: {e}")))
    }

    /// Issues a pass to `subject` for `access` (admins and operators; needs the subject's
    /// consent for purpose `pass`). The verifier is the venue or site that will check it
    /// (default: `access`): its pseudonym is that verifier's own. Signed with EdDSA unless
    /// `alg` asks for ES256.
    pub async fn issue_pass(
        &self,
        p: &Principal,
        subject: &str,
        access: &str,
        verifier: Option<&str>,
        valid_days: Option<i64>,
        alg: Alg,
    ) -> Result<IssuedPass, CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        name("access", access)?;
        let verifier = verifier.unwrap_or(access);
        name("verifier", verifier)?;
        let days = valid_days.unwrap_or(DEFAULT_PASS_DAYS);
        if !(1..=MAX_PASS_DAYS).contains(&days) {
            return Err(CoreError::Invalid(format!(
                "valid_days must be 1 to {MAX_PASS_DAYS}"
            )));
        }
        let t = now();
        let mut tx = self.db.begin_write().await?;
        self.subject_in_tenant(&mut tx, &p.tenant, subject).await?;
        self.active_consent(&mut tx, &p.tenant, subject, Purpose::Pass)
            .await?;
        let row = PassRow {
            subject: subject.to_string(),
            epoch: store::passes::current_epoch(&mut tx, &p.tenant, t).await?,
            alg: alg.as_str().to_string(),
            access: access.to_string(),
            verifier: verifier.to_string(),
            issued_at: t,
            expires_at: t + days * 86_400,
            revoked_at: None,
        };
        let id = new_id();
        store::passes::insert(&mut tx, &p.tenant, &id, &row).await?;
        let r = Record::ok("pass.issue", Some(subject)).detail(format!(
            "pass={id} access={access} verifier={verifier} days={days} alg={}",
            alg.as_str()
        ));
        audit::record(&mut tx, p, r).await?;
        let text = self.sign_pass(&p.tenant, &id, &row)?;
        tx.commit().await?;
        Ok(IssuedPass {
            pass_id: id,
            pass: text,
            expires_at: row.expires_at,
        })
    }

    /// The text of a live pass, signed again from its stored claims (for its QR code).
    pub async fn pass_text(
        &self,
        p: &Principal,
        subject: &str,
        pass_id: &str,
    ) -> Result<String, CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        self.live_pass_text(&p.tenant, subject, pass_id).await
    }

    /// The text of a live pass of `subject` in `tenant` (a revoked or expired one is not found).
    pub(crate) async fn live_pass_text(
        &self,
        tenant: &str,
        subject: &str,
        pass_id: &str,
    ) -> Result<String, CoreError> {
        let mut c = self.db.pool().acquire().await?;
        let row = store::passes::get(&mut c, tenant, subject, pass_id)
            .await?
            .ok_or(CoreError::NotFound)?;
        if row.revoked_at.is_some() || row.expires_at <= now() {
            return Err(CoreError::NotFound);
        }
        self.sign_pass(tenant, pass_id, &row)
    }

    /// Revokes a pass: it goes on the signed revocation list until it expires.
    pub async fn revoke_pass(
        &self,
        p: &Principal,
        subject: &str,
        pass_id: &str,
    ) -> Result<(), CoreError> {
        p.require(&[Role::Admin, Role::Operator])?;
        let mut tx = self.db.begin_write().await?;
        let row = store::passes::get(&mut tx, &p.tenant, subject, pass_id)
            .await?
            .ok_or(CoreError::NotFound)?;
        let t = now();
        if row.revoked_at.is_none() {
            revoke(&mut tx, &p.tenant, pass_id, row.expires_at, t).await?;
        }
        let r = Record::ok("pass.revoke", Some(subject)).detail(format!("pass={pass_id}"));
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes every live pass of `subject` (its deletion, or the withdrawal of its `pass`
    /// consent), inside the caller's transaction. Returns how many.
    pub(crate) async fn revoke_passes_of(
        &self,
        c: &mut Conn,
        tenant: &str,
        subject: &str,
    ) -> Result<usize, CoreError> {
        let t = now();
        let live = store::passes::live_of_subject(c, tenant, subject, t).await?;
        for (id, expires_at) in &live {
            revoke(c, tenant, id, *expires_at, t).await?;
        }
        Ok(live.len())
    }

    /// Starts new pass-signing keys (admins). The old ones stay in the trust list until the
    /// last pass they signed expires. Returns the new keys' ids (hex), EdDSA then ES256.
    pub async fn rotate_pass_key(&self, p: &Principal) -> Result<Vec<String>, CoreError> {
        p.require(&[Role::Admin])?;
        let mut tx = self.db.begin_write().await?;
        let epoch = store::passes::rotate(&mut tx, &p.tenant, now()).await?;
        let kids = [Alg::EdDSA, Alg::ES256]
            .into_iter()
            .map(|a| {
                Ok(pass::hex(
                    &self.pass_key(&p.tenant, epoch, a)?.public().kid(),
                ))
            })
            .collect::<Result<Vec<_>, CoreError>>()?;
        let r = Record::ok("pass.rotate_key", None).detail(format!("kids={}", kids.join(",")));
        audit::record(&mut tx, p, r).await?;
        tx.commit().await?;
        Ok(kids)
    }

    /// The tenant's signing epoch now: a read, and a write only the first time (the public
    /// endpoints call this, and must not take the write lock on every call).
    async fn signing_epoch(&self, c: &mut Conn, tenant: &str, t: i64) -> Result<i64, CoreError> {
        if let Some(e) = store::passes::live_epoch(c, tenant).await? {
            return Ok(e);
        }
        let mut tx = self.db.begin_write().await?;
        let e = store::passes::current_epoch(&mut tx, tenant, t).await?;
        tx.commit().await?;
        Ok(e)
    }

    /// The tenant's pass trust list (public): the current keys (EdDSA and ES256) and every older
    /// pair that signed a pass that has not expired, newest first.
    pub async fn pass_trust_list(&self, tenant: &str) -> Result<TrustList, CoreError> {
        let mut c = self.db.pool().acquire().await?;
        self.tenant_exists(&mut c, tenant).await?;
        let t = now();
        let mut epochs = store::passes::trusted_epochs(&mut c, tenant, t).await?;
        if epochs.is_empty() {
            epochs.push(self.signing_epoch(&mut c, tenant, t).await?);
        }
        let mut keys = Vec::with_capacity(2 * epochs.len());
        for &e in &epochs {
            for alg in [Alg::EdDSA, Alg::ES256] {
                keys.push(self.pass_key(tenant, e, alg)?.public());
            }
        }
        Ok(TrustList::new(&audit::origin(tenant), &keys))
    }

    /// The tenant's revocation list (public), signed now with the current key for `alg`: the
    /// list and its signed `COSE_Sign1`.
    pub async fn pass_revocations(
        &self,
        tenant: &str,
        alg: Alg,
    ) -> Result<(RevocationList, Vec<u8>), CoreError> {
        let t = now();
        let mut c = self.db.pool().acquire().await?;
        self.tenant_exists(&mut c, tenant).await?;
        let epoch = self.signing_epoch(&mut c, tenant, t).await?;
        let list = self.revocation_list(&mut c, tenant, t).await?;
        drop(c);
        let signed = list
            .sign(&self.pass_key(tenant, epoch, alg)?)
            .map_err(|e| CoreError::Internal(format!("revocation list: {e}")))?;
        Ok((list, signed))
    }

    /// The tenant's revocations at `t`, unsigned (the server's own check-ins need no
    /// signature).
    async fn revocation_list(
        &self,
        c: &mut Conn,
        tenant: &str,
        t: i64,
    ) -> Result<RevocationList, CoreError> {
        let (hashes, version) = store::passes::revocations(c, tenant, t).await?;
        Ok(RevocationList {
            issuer: audit::origin(tenant),
            version: u64::try_from(version).unwrap_or(0),
            issued_at: t,
            revoked: hashes
                .iter()
                .filter_map(|h| <[u8; 16]>::try_from(h.as_slice()).ok())
                .collect(),
        })
    }

    /// A venue checks a pass in (device keys with a site): the pass is verified against the
    /// tenant's keys and revocations, and must be for this site. Only the pseudonym, the venue
    /// and the time are recorded; they are deleted after the check-in retention (default
    /// [`CHECKIN_RETENTION_DAYS`]).
    pub async fn check_in(&self, p: &Principal, text: &str) -> Result<CheckIn, CoreError> {
        p.require(&[Role::Device])?;
        let venue = p.site.clone().ok_or_else(|| {
            CoreError::Invalid("check-ins come from a device key with a site".into())
        })?;
        let trust = self.pass_trust_list(&p.tenant).await?;
        let t = now();
        let list = {
            let mut c = self.db.pool().acquire().await?;
            self.revocation_list(&mut c, &p.tenant, t).await?
        };
        let check = pass::Check {
            now: t,
            verifier: Some(&venue),
            revocations: Some(&list),
            max_list_age: 60,
        };
        let mut tx = self.db.begin_write().await?;
        match pass::verify(text, &trust, &check) {
            Ok(claims) => {
                store::passes::check_in(&mut tx, &p.tenant, &new_id(), &venue, &claims.subject, t)
                    .await?;
                audit::record(&mut tx, p, Record::ok("pass.checkin", None)).await?;
                tx.commit().await?;
                Ok(CheckIn {
                    decision: "allow",
                    venue,
                    pseudonym: claims.subject,
                    at: t,
                })
            }
            Err(e) => {
                let r = Record {
                    action: "pass.checkin",
                    target: None,
                    outcome: "refused",
                    detail: Some(consentry_types::HasErrorCode::code(&e).as_str().to_string()),
                };
                audit::record(&mut tx, p, r).await?;
                tx.commit().await?;
                Err(CoreError::Pass(e))
            }
        }
    }

    /// [`Core::check_in`] from a camera frame or photo (PNG or JPEG) of the pass's QR code:
    /// the kiosk's scan. The image is read on the engine's blocking pool and dropped; nothing
    /// of it is kept.
    pub async fn check_in_photo(
        &self,
        p: &Principal,
        image: Vec<u8>,
    ) -> Result<CheckIn, CoreError> {
        p.require(&[Role::Device])?;
        let found = self.on_engine(move |_| Ok(pass::qr::read(&image))).await?;
        let text = match found {
            Ok(texts) => texts.into_iter().find(|t| t.starts_with(pass::PREFIX)),
            Err(pass::qr::ReadError::NotAnImage) => {
                return Err(CoreError::Face(consentry_face::FaceError::NotAnImage))
            }
            Err(pass::qr::ReadError::NoCode) => None,
        };
        match text {
            Some(t) => self.check_in(p, &t).await,
            None => Err(CoreError::Pass(pass::PassError::Malformed(
                "no pass could be read in the image",
            ))),
        }
    }

    /// Sets how many days check-ins are kept (1 to [`MAX_CHECKIN_RETENTION_DAYS`]; default
    /// [`CHECKIN_RETENTION_DAYS`]).
    pub fn set_checkin_retention_days(&mut self, days: i64) -> Result<(), CoreError> {
        if !(1..=MAX_CHECKIN_RETENTION_DAYS).contains(&days) {
            return Err(CoreError::Invalid(format!(
                "check-in retention must be 1 to {MAX_CHECKIN_RETENTION_DAYS} days"
            )));
        }
        self.checkin_retention_days = days;
        Ok(())
    }

    /// Deletes check-ins older than the retention at `at` (all tenants), with an entry in each
    /// tenant's log. Returns how many.
    pub(crate) async fn sweep_checkins(&self, c: &mut Conn, at: i64) -> Result<u64, CoreError> {
        let before = at - self.checkin_retention_days * 86_400;
        let gone = store::passes::sweep_checkins(c, before).await?;
        let mut total = 0;
        for (tenant, n) in gone {
            let r = Record::ok("retention.sweep", None).detail(format!("checkins={n}"));
            audit::record_system(c, &tenant, System::Sweep, r).await?;
            total += u64::try_from(n).unwrap_or(0);
        }
        Ok(total)
    }
}

async fn revoke(
    c: &mut Conn,
    tenant: &str,
    id: &str,
    expires_at: i64,
    at: i64,
) -> Result<(), CoreError> {
    let hash = pass::revocation_hash(
        &pass::unhex(id).ok_or_else(|| CoreError::Internal("pass id".into()))?,
    );
    store::passes::revoke(c, tenant, id, &hash, expires_at, at).await?;
    Ok(())
}
