//! The issuer's keys: EdDSA over Ed25519 (the default) and ES256 (ECDSA over P-256 with
//! SHA-256, RFC 6979 deterministic) for verifiers that cannot do EdDSA.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use coset::iana;
use sha2::{Digest, Sha256};

use crate::PassError;

/// The signature algorithms a pass can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Alg {
    /// EdDSA over Ed25519 (the default).
    #[default]
    EdDSA,
    /// ECDSA over P-256 with SHA-256.
    ES256,
}

impl Alg {
    /// `EdDSA` or `ES256`, as JOSE and COSE name them.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::EdDSA => "EdDSA",
            Alg::ES256 => "ES256",
        }
    }

    /// From [`Alg::as_str`].
    pub fn parse(s: &str) -> Option<Alg> {
        match s {
            "EdDSA" => Some(Alg::EdDSA),
            "ES256" => Some(Alg::ES256),
            _ => None,
        }
    }
}

/// A signing key.
pub enum PassKey {
    /// EdDSA (COSE `alg` -8).
    Ed25519(ed25519_dalek::SigningKey),
    /// ES256 (COSE `alg` -7).
    P256(p256::ecdsa::SigningKey),
}

impl std::fmt::Debug for PassKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PassKey::Ed25519(_) => "PassKey::Ed25519(<redacted>)",
            PassKey::P256(_) => "PassKey::P256(<redacted>)",
        })
    }
}

/// A public key a verifier trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// Ed25519.
    Ed25519(ed25519_dalek::VerifyingKey),
    /// P-256.
    P256(p256::ecdsa::VerifyingKey),
}

impl PassKey {
    /// An ES256 key from 32 secret bytes (`None` for the rare value that is not a scalar).
    pub fn p256_from_bytes(bytes: &[u8; 32]) -> Option<PassKey> {
        p256::ecdsa::SigningKey::from_bytes(bytes.into())
            .ok()
            .map(PassKey::P256)
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        match self {
            PassKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
            PassKey::P256(k) => PublicKey::P256(*k.verifying_key()),
        }
    }

    /// The COSE algorithm it signs with.
    pub fn alg(&self) -> iana::Algorithm {
        match self {
            PassKey::Ed25519(_) => iana::Algorithm::EdDSA,
            PassKey::P256(_) => iana::Algorithm::ES256,
        }
    }

    /// The signature of `data`: 64 bytes for both (ES256 as `r ‖ s`, as COSE wants).
    pub(crate) fn sign(&self, data: &[u8]) -> Vec<u8> {
        match self {
            PassKey::Ed25519(k) => ed25519_dalek::Signer::sign(k, data).to_bytes().to_vec(),
            PassKey::P256(k) => {
                let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(k, data);
                sig.to_bytes().to_vec()
            }
        }
    }
}

impl PublicKey {
    /// The COSE algorithm its signatures use.
    pub fn alg(&self) -> iana::Algorithm {
        match self {
            PublicKey::Ed25519(_) => iana::Algorithm::EdDSA,
            PublicKey::P256(_) => iana::Algorithm::ES256,
        }
    }

    /// Its bytes as the key id hashes them: Ed25519's 32, P-256's uncompressed SEC1 point (65).
    fn bytes(&self) -> Vec<u8> {
        match self {
            PublicKey::Ed25519(k) => k.as_bytes().to_vec(),
            PublicKey::P256(k) => k.to_encoded_point(false).as_bytes().to_vec(),
        }
    }

    /// The key id: the first 8 bytes of SHA-256 of [`PublicKey::bytes`].
    pub fn kid(&self) -> [u8; 8] {
        let d = Sha256::digest(self.bytes());
        let mut kid = [0u8; 8];
        kid.copy_from_slice(&d[..8]);
        kid
    }

    /// Whether `sig` signs `data`.
    pub(crate) fn verify(&self, data: &[u8], sig: &[u8]) -> Result<(), PassError> {
        match self {
            PublicKey::Ed25519(k) => {
                let sig = ed25519_dalek::Signature::from_slice(sig)
                    .map_err(|_| PassError::BadSignature)?;
                ed25519_dalek::Verifier::verify(k, data, &sig).map_err(|_| PassError::BadSignature)
            }
            PublicKey::P256(k) => {
                let sig =
                    p256::ecdsa::Signature::from_slice(sig).map_err(|_| PassError::BadSignature)?;
                p256::ecdsa::signature::Verifier::verify(k, data, &sig)
                    .map_err(|_| PassError::BadSignature)
            }
        }
    }

    /// The key as a JWK (RFC 7517/8037): `OKP`/`Ed25519` with `x`, or `EC`/`P-256` with `x`
    /// and `y`; `kid` is the base64url of [`PublicKey::kid`].
    pub fn to_jwk(&self) -> serde_json::Value {
        let kid = URL_SAFE_NO_PAD.encode(self.kid());
        match self {
            PublicKey::Ed25519(k) => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(k.as_bytes()),
            }),
            PublicKey::P256(k) => {
                let p = k.to_encoded_point(false);
                let coord = |c: Option<&p256::FieldBytes>| {
                    c.map(|c| URL_SAFE_NO_PAD.encode(c)).unwrap_or_default()
                };
                serde_json::json!({
                    "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                    "x": coord(p.x()), "y": coord(p.y()),
                })
            }
        }
    }

    /// A key from its JWK; its `kid` must match.
    pub fn from_jwk(k: &serde_json::Value) -> Result<PublicKey, PassError> {
        let bad = PassError::TrustListInvalid;
        let field = |name: &str| {
            k[name]
                .as_str()
                .and_then(|x| URL_SAFE_NO_PAD.decode(x).ok())
                .and_then(|x| <[u8; 32]>::try_from(x).ok())
        };
        let key = match (k["kty"].as_str(), k["crv"].as_str()) {
            (Some("OKP"), Some("Ed25519")) => {
                let x = field("x").ok_or(bad("an Ed25519 key's x is not 32 bytes"))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map_err(|_| bad("an Ed25519 key is not a curve point"))?;
                PublicKey::Ed25519(key)
            }
            (Some("EC"), Some("P-256")) => {
                let (x, y) = field("x")
                    .zip(field("y"))
                    .ok_or(bad("a P-256 key's x or y is not 32 bytes"))?;
                let mut sec1 = vec![4u8];
                sec1.extend_from_slice(&x);
                sec1.extend_from_slice(&y);
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .map_err(|_| bad("a P-256 key is not a curve point"))?;
                PublicKey::P256(key)
            }
            _ => return Err(bad("a key is neither OKP/Ed25519 nor EC/P-256")),
        };
        let kid = k["kid"]
            .as_str()
            .and_then(|x| URL_SAFE_NO_PAD.decode(x).ok())
            .ok_or(bad("a key has no kid"))?;
        if kid != key.kid() {
            return Err(bad("a key's kid does not match the key"));
        }
        Ok(key)
    }
}
