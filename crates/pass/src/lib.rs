//! Consentry passes: signed minimal-disclosure credentials a venue checks offline.
//!
//! A pass is a CBOR Web Token (RFC 8392) in a `COSE_Sign1` (RFC 9052, tagged 18) signed with
//! EdDSA (Ed25519; ES256 for verifiers that need it), zlib-compressed and base45-encoded (RFC 9285) behind the prefix `CS1:`, the
//! shape of the EU Digital COVID Certificate without a name or a birth date. Its claims:
//!
//! | claim | key | what |
//! |---|---|---|
//! | `iss` | 1 | the issuing tenant's log origin, `consentry/<tenant id>` |
//! | `sub` | 2 | a pseudonym for this person **at this verifier only** (a keyed hash of subject and verifier) |
//! | `aud` | 3 | the verifier (venue, site) the pass is for |
//! | `exp`, `nbf`, `iat` | 4, 5, 6 | Unix seconds |
//! | `cti` | 7 | the pass id (16 random bytes), what a revocation names |
//! | `access` | `"access"` | the permission, e.g. `site-12` |
//!
//! and the key id (`kid`, the first 8 bytes of SHA-256 of the public key) in the protected
//! header. Two venues see two different pseudonyms and two different pass ids for one person,
//! so their visitor logs do not join.
//!
//! Verification needs only a trust list (a JWK Set of the issuer's keys) and, to catch
//! revoked passes, a signed revocation list no older than the verifier allows.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod base45;
mod keys;
pub mod qr;

pub use keys::{Alg, PassKey, PublicKey};

use std::io::Read;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use consentry_types::{ErrorCode, HasErrorCode};
use coset::cwt::{ClaimName, ClaimsSet, ClaimsSetBuilder, Timestamp};
use coset::{iana, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder};
use coset::{RegisteredLabelWithPrivate, TaggedCborSerializable};
use sha2::{Digest, Sha256};

/// What every pass starts with.
pub const PREFIX: &str = "CS1:";
/// The longest pass text accepted (a QR code holds at most 4,296 alphanumeric characters).
pub const MAX_PASS_CHARS: usize = 4296;
/// The most bytes a pass inflates to.
const MAX_INFLATED: u64 = 8192;
/// How far a pass's `nbf` may lie ahead of the verifier's clock (clocks disagree).
pub const CLOCK_SKEW_SECS: i64 = 60;
/// The private claim carrying the permission.
pub const ACCESS_CLAIM: &str = "access";

/// Why a pass (or a revocation list) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PassError {
    /// Not a pass: wrong prefix, bad base45, bad zlib, bad CBOR, a missing claim.
    #[error("not a well-formed pass: {0}")]
    Malformed(&'static str),
    /// Signed by a key the trust list does not hold.
    #[error("the pass was signed by a key the trust list does not hold")]
    UnknownKey,
    /// The signature does not verify (the pass was altered or forged).
    #[error("the pass's signature does not verify")]
    BadSignature,
    /// Past its expiry.
    #[error("the pass has expired")]
    Expired,
    /// Before its `nbf`.
    #[error("the pass is not valid yet")]
    NotYetValid,
    /// For another verifier.
    #[error("the pass is for another verifier")]
    WrongVerifier,
    /// On the revocation list.
    #[error("the pass was revoked")]
    Revoked,
    /// The revocation list is older than the verifier accepts.
    #[error("the revocation list is too old; fetch a new one")]
    RevocationListStale,
    /// The revocation list is malformed, from another issuer, or its signature does not verify.
    #[error("the revocation list is not valid: {0}")]
    RevocationListInvalid(&'static str),
    /// A trust list that is not a JWK Set of Ed25519 keys.
    #[error("the trust list is not valid: {0}")]
    TrustListInvalid(&'static str),
}

impl HasErrorCode for PassError {
    fn code(&self) -> ErrorCode {
        match self {
            PassError::Malformed(_) => ErrorCode::PassMalformed,
            PassError::UnknownKey => ErrorCode::PassUnknownKey,
            PassError::BadSignature => ErrorCode::PassBadSignature,
            PassError::Expired => ErrorCode::PassExpired,
            PassError::NotYetValid => ErrorCode::PassNotYetValid,
            PassError::WrongVerifier => ErrorCode::PassWrongVerifier,
            PassError::Revoked => ErrorCode::PassRevoked,
            PassError::RevocationListStale => ErrorCode::RevocationListStale,
            PassError::RevocationListInvalid(_) | PassError::TrustListInvalid(_) => {
                ErrorCode::InvalidRequest
            }
        }
    }
}

/// A pass's claims.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PassClaims {
    /// `iss`: the issuer, `consentry/<tenant id>`.
    pub issuer: String,
    /// `sub`: the person's pseudonym at this verifier (hex).
    pub subject: String,
    /// `aud`: the verifier the pass is for.
    pub verifier: String,
    /// The permission, e.g. `site-12`.
    pub access: String,
    /// `iat`, Unix seconds.
    pub issued_at: i64,
    /// `nbf`, Unix seconds.
    pub not_before: i64,
    /// `exp`, Unix seconds.
    pub expires_at: i64,
    /// `cti`: the pass id (hex of 16 bytes).
    pub pass_id: String,
}

/// The pairwise pseudonym of `subject` at `verifier`: HMAC-SHA256 under the issuer's
/// pseudonym secret, its first 16 bytes in hex. Without the secret, two pseudonyms of one
/// person at two verifiers cannot be linked.
pub fn pseudonym(secret: &[u8; 32], subject: &str, verifier: &str) -> String {
    use hmac::Mac;
    match hmac::Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(subject.as_bytes());
            mac.update(b"\0");
            mac.update(verifier.as_bytes());
            hex(&mac.finalize().into_bytes()[..16])
        }
        // HMAC takes keys of any length: unreachable.
        Err(_) => String::new(),
    }
}

/// What a revocation list names for a pass id: `SHA-256("consentry-pass-revocation\0" ‖ id)`,
/// first 16 bytes.
pub fn revocation_hash(pass_id: &[u8]) -> [u8; 16] {
    let d = Sha256::new()
        .chain_update(b"consentry-pass-revocation\0")
        .chain_update(pass_id)
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from lower- or upper-case hex. Only hex digits: `u8::from_str_radix` alone would also
/// take a `+` sign, giving one value two spellings.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

fn sign1(payload: Vec<u8>, key: &PassKey) -> Result<Vec<u8>, PassError> {
    let protected = HeaderBuilder::new()
        .algorithm(key.alg())
        .key_id(key.public().kid().to_vec())
        .build();
    CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(b"", |data| key.sign(data))
        .build()
        .to_tagged_vec()
        .map_err(|_| PassError::Malformed("encoding"))
}

/// Issues a pass: the claims signed with `key`, compressed and encoded behind [`PREFIX`].
pub fn issue(claims: &PassClaims, key: &PassKey) -> Result<String, PassError> {
    let id = unhex(&claims.pass_id).ok_or(PassError::Malformed("pass id"))?;
    let set = ClaimsSetBuilder::new()
        .issuer(claims.issuer.clone())
        .subject(claims.subject.clone())
        .audience(claims.verifier.clone())
        .expiration_time(Timestamp::WholeSeconds(claims.expires_at))
        .not_before(Timestamp::WholeSeconds(claims.not_before))
        .issued_at(Timestamp::WholeSeconds(claims.issued_at))
        .cwt_id(id)
        .text_claim(
            ACCESS_CLAIM.to_string(),
            ciborium::Value::Text(claims.access.clone()),
        )
        .build();
    let payload = set.to_vec().map_err(|_| PassError::Malformed("encoding"))?;
    let cose = sign1(payload, key)?;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut z, &cose).map_err(|_| PassError::Malformed("zlib"))?;
    let zipped = z.finish().map_err(|_| PassError::Malformed("zlib"))?;
    Ok(format!("{PREFIX}{}", base45::encode(&zipped)))
}

/// The `COSE_Sign1` inside a pass: prefix, base45 and zlib undone, CBOR parsed (tagged or
/// not). Nothing is verified yet.
pub fn unwrap(pass: &str) -> Result<CoseSign1, PassError> {
    let pass = pass.trim();
    if pass.len() > MAX_PASS_CHARS {
        return Err(PassError::Malformed("too long"));
    }
    let body = pass
        .strip_prefix(PREFIX)
        .ok_or(PassError::Malformed("no CS1: prefix"))?;
    let zipped = base45::decode(body).ok_or(PassError::Malformed("base45"))?;
    let mut cose = Vec::new();
    flate2::read::ZlibDecoder::new(&zipped[..])
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut cose)
        .map_err(|_| PassError::Malformed("zlib"))?;
    if cose.len() as u64 > MAX_INFLATED {
        return Err(PassError::Malformed("too long"));
    }
    parse_sign1(&cose)
}

fn parse_sign1(bytes: &[u8]) -> Result<CoseSign1, PassError> {
    CoseSign1::from_tagged_slice(bytes)
        .or_else(|_| CoseSign1::from_slice(bytes))
        .map_err(|_| PassError::Malformed("COSE_Sign1"))
}

/// One trusted issuer key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey {
    /// Its key id.
    pub kid: [u8; 8],
    /// The public key.
    pub key: PublicKey,
}

/// The keys a verifier trusts: a JWK Set (RFC 7517) of `OKP`/`Ed25519` and `EC`/`P-256` keys
/// with their `kid` (base64url of the 8-byte key id), and the issuer they sign for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustList {
    /// The issuer (`consentry/<tenant id>`).
    pub issuer: String,
    /// Its keys, newest first.
    pub keys: Vec<TrustedKey>,
}

impl TrustList {
    /// A trust list of `keys` for `issuer`.
    pub fn new(issuer: &str, keys: &[PublicKey]) -> TrustList {
        TrustList {
            issuer: issuer.to_string(),
            keys: keys
                .iter()
                .map(|k| TrustedKey {
                    kid: k.kid(),
                    key: k.clone(),
                })
                .collect(),
        }
    }

    /// The JWK Set document.
    pub fn to_json(&self) -> serde_json::Value {
        let keys: Vec<_> = self.keys.iter().map(|k| k.key.to_jwk()).collect();
        serde_json::json!({ "issuer": self.issuer, "keys": keys })
    }

    /// Reads a JWK Set written by [`TrustList::to_json`] (or by hand): every key must be an
    /// Ed25519 or P-256 key whose `kid` matches it.
    pub fn from_json(text: &str) -> Result<TrustList, PassError> {
        let bad = PassError::TrustListInvalid;
        let doc: serde_json::Value = serde_json::from_str(text).map_err(|_| bad("not JSON"))?;
        let issuer = doc["issuer"].as_str().ok_or(bad("no issuer"))?.to_string();
        let keys = doc["keys"]
            .as_array()
            .ok_or(bad("no keys"))?
            .iter()
            .map(|k| {
                PublicKey::from_jwk(k).map(|key| TrustedKey {
                    kid: key.kid(),
                    key,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustList { issuer, keys })
    }

    fn find(&self, kid: &[u8]) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.kid == kid).map(|k| &k.key)
    }

    /// Checks `sign1`'s algorithm, key and signature against this list.
    fn check(&self, sign1: &CoseSign1) -> Result<(), PassError> {
        let alg = match sign1.protected.header.alg.as_ref() {
            Some(RegisteredLabelWithPrivate::Assigned(
                a @ (iana::Algorithm::EdDSA | iana::Algorithm::ES256),
            )) => *a,
            _ => return Err(PassError::Malformed("algorithm is neither EdDSA nor ES256")),
        };
        let key = self
            .find(&sign1.protected.header.key_id)
            .ok_or(PassError::UnknownKey)?;
        if key.alg() != alg {
            return Err(PassError::BadSignature);
        }
        sign1.verify_signature(b"", |sig, data| key.verify(data, sig))
    }
}

fn int(v: &Option<Timestamp>) -> Option<i64> {
    match v {
        Some(Timestamp::WholeSeconds(s)) => Some(*s),
        _ => None,
    }
}

fn claims_of(set: ClaimsSet) -> Result<PassClaims, PassError> {
    let m = PassError::Malformed;
    let access = set
        .rest
        .iter()
        .find_map(|(name, v)| match (name, v) {
            (ClaimName::Text(n), ciborium::Value::Text(t)) if n == ACCESS_CLAIM => Some(t.clone()),
            _ => None,
        })
        .ok_or(m("no access claim"))?;
    Ok(PassClaims {
        issuer: set.issuer.ok_or(m("no iss"))?,
        subject: set.subject.ok_or(m("no sub"))?,
        verifier: set.audience.ok_or(m("no aud"))?,
        access,
        issued_at: int(&set.issued_at).ok_or(m("no iat"))?,
        not_before: int(&set.not_before).ok_or(m("no nbf"))?,
        expires_at: int(&set.expiration_time).ok_or(m("no exp"))?,
        pass_id: hex(&set.cwt_id.ok_or(m("no cti"))?),
    })
}

/// What a verifier checks a pass against besides the trust list.
#[derive(Clone, Debug, Default)]
pub struct Check<'a> {
    /// Unix seconds now.
    pub now: i64,
    /// The verifier's own id: the pass must be for it (none: any).
    pub verifier: Option<&'a str>,
    /// A revocation list, opened with [`RevocationList::open`] (none: not checked).
    pub revocations: Option<&'a RevocationList>,
    /// The oldest revocation list accepted, in seconds.
    pub max_list_age: i64,
}

/// Verifies a pass offline: its form, its issuer key and signature, its validity period, its
/// verifier and (when a list is given) that it is not revoked. Returns its claims.
pub fn verify(pass: &str, trust: &TrustList, check: &Check<'_>) -> Result<PassClaims, PassError> {
    let sign1 = unwrap(pass)?;
    trust.check(&sign1)?;
    let payload = sign1.payload.ok_or(PassError::Malformed("no payload"))?;
    let set = ClaimsSet::from_slice(&payload).map_err(|_| PassError::Malformed("claims"))?;
    let claims = claims_of(set)?;
    if claims.issuer != trust.issuer {
        return Err(PassError::UnknownKey);
    }
    if claims.not_before > check.now + CLOCK_SKEW_SECS {
        return Err(PassError::NotYetValid);
    }
    if claims.expires_at <= check.now {
        return Err(PassError::Expired);
    }
    if let Some(v) = check.verifier {
        if claims.verifier != v {
            return Err(PassError::WrongVerifier);
        }
    }
    if let Some(list) = check.revocations {
        if list.issuer != claims.issuer {
            return Err(PassError::RevocationListInvalid("another issuer's list"));
        }
        if check.now - list.issued_at > check.max_list_age {
            return Err(PassError::RevocationListStale);
        }
        let id = unhex(&claims.pass_id).ok_or(PassError::Malformed("cti"))?;
        if list.revoked.contains(&revocation_hash(&id)) {
            return Err(PassError::Revoked);
        }
    }
    Ok(claims)
}

/// A signed, versioned list of revoked passes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationList {
    /// The issuer.
    pub issuer: String,
    /// Grows with every revocation.
    pub version: u64,
    /// When the list was signed (Unix seconds): how fresh it is.
    pub issued_at: i64,
    /// [`revocation_hash`] of each revoked pass that has not expired yet.
    pub revoked: Vec<[u8; 16]>,
}

impl RevocationList {
    /// The list as a signed `COSE_Sign1`: its payload a CBOR map `{1: iss, 6: iat, "version":
    /// n, "revoked": [bstr]}`.
    pub fn sign(&self, key: &PassKey) -> Result<Vec<u8>, PassError> {
        use ciborium::Value;
        let map = Value::Map(vec![
            (Value::Integer(1.into()), Value::Text(self.issuer.clone())),
            (
                Value::Integer(6.into()),
                Value::Integer(self.issued_at.into()),
            ),
            (
                Value::Text("version".into()),
                Value::Integer(self.version.into()),
            ),
            (
                Value::Text("revoked".into()),
                Value::Array(
                    self.revoked
                        .iter()
                        .map(|h| Value::Bytes(h.to_vec()))
                        .collect(),
                ),
            ),
        ]);
        let mut payload = Vec::new();
        ciborium::into_writer(&map, &mut payload).map_err(|_| PassError::Malformed("encoding"))?;
        sign1(payload, key)
    }

    /// Opens a signed list, checking it against the trust list.
    pub fn open(bytes: &[u8], trust: &TrustList) -> Result<RevocationList, PassError> {
        let bad = PassError::RevocationListInvalid;
        let sign1 = parse_sign1(bytes).map_err(|_| bad("not a COSE_Sign1"))?;
        trust.check(&sign1).map_err(|e| match e {
            PassError::UnknownKey => bad("signed by an unknown key"),
            _ => bad("its signature does not verify"),
        })?;
        let payload = sign1.payload.ok_or(bad("no payload"))?;
        let map: ciborium::Value =
            ciborium::from_reader(&payload[..]).map_err(|_| bad("payload is not CBOR"))?;
        let entries = map.as_map().ok_or(bad("payload is not a map"))?;
        let get = |k: ciborium::Value| entries.iter().find(|(key, _)| *key == k).map(|(_, v)| v);
        let issuer = get(1.into())
            .and_then(|v| v.as_text())
            .ok_or(bad("no iss"))?
            .to_string();
        let int = |v: Option<&ciborium::Value>| {
            v.and_then(|v| v.as_integer())
                .and_then(|i| i64::try_from(i).ok())
        };
        let issued_at = int(get(6.into())).ok_or(bad("no iat"))?;
        let version = int(get("version".into()))
            .and_then(|v| u64::try_from(v).ok())
            .ok_or(bad("no version"))?;
        let revoked = get("revoked".into())
            .and_then(|v| v.as_array())
            .ok_or(bad("no revoked"))?
            .iter()
            .map(|v| {
                v.as_bytes()
                    .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
            })
            .collect::<Option<Vec<_>>>()
            .ok_or(bad("a revoked entry is not 16 bytes"))?;
        if issuer != trust.issuer {
            return Err(bad("another issuer's list"));
        }
        Ok(RevocationList {
            issuer,
            version,
            issued_at,
            revoked,
        })
    }

    /// The JSON document served and saved: the readable fields and `signed`, the base64url
    /// `COSE_Sign1` a verifier trusts (it reads nothing else).
    pub fn to_json(&self, signed: &[u8]) -> serde_json::Value {
        serde_json::json!({
            "issuer": self.issuer,
            "version": self.version,
            "issued_at": self.issued_at,
            "revoked": self.revoked.iter().map(|h| hex(h)).collect::<Vec<_>>(),
            "signed": URL_SAFE_NO_PAD.encode(signed),
        })
    }

    /// Reads the JSON document of [`RevocationList::to_json`], trusting only `signed`.
    pub fn from_json(text: &str, trust: &TrustList) -> Result<RevocationList, PassError> {
        let bad = PassError::RevocationListInvalid;
        let doc: serde_json::Value = serde_json::from_str(text).map_err(|_| bad("not JSON"))?;
        let signed = doc["signed"]
            .as_str()
            .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
            .ok_or(bad("no signed list"))?;
        RevocationList::open(&signed, trust)
    }
}

#[cfg(test)]
mod tests;
