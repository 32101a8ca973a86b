//! Signed consent receipts.

use consentry_pass::unhex;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Proof, for the person, of what they consented to: Ed25519 over a canonical encoding of the
/// fields (length-prefixed, fixed order), verifiable offline with the tenant's public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentReceipt {
    /// Consent id.
    pub consent_id: String,
    /// Tenant (the controller).
    pub tenant_id: String,
    /// The person.
    pub subject_id: String,
    /// `access` or `verification`.
    pub purpose: String,
    /// Days the templates may be kept after their enrolment or last successful match (at most
    /// three years).
    pub retention_days: i64,
    /// Unix seconds.
    pub granted_at: i64,
    /// The tenant's receipt key, hex.
    pub public_key: String,
    /// Signature, hex.
    pub signature: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ConsentReceipt {
    /// The bytes that are signed.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let fields = [
            "consentry-consent-receipt-v1".to_string(),
            self.consent_id.clone(),
            self.tenant_id.clone(),
            self.subject_id.clone(),
            self.purpose.clone(),
            self.retention_days.to_string(),
            self.granted_at.to_string(),
        ];
        for f in fields {
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(f.as_bytes());
        }
        out
    }

    /// The stored form: the whole receipt, signature included, as JSON.
    pub(crate) fn to_stored(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn sign(mut self, key: &SigningKey) -> Self {
        self.public_key = hex(key.verifying_key().as_bytes());
        self.signature = hex(&key.sign(&self.canonical()).to_bytes());
        self
    }

    /// Checks the signature against `tenant_key`, the tenant's published receipt key (hex; from
    /// `GET /api/v1/tenant/public-keys`, or saved by the person when they consented). The key
    /// the receipt itself names is only a hint: anyone can sign a receipt with a key of their
    /// own and name it, so a receipt naming another key fails.
    pub fn verify(&self, tenant_key: &str) -> bool {
        if !tenant_key.eq_ignore_ascii_case(&self.public_key) {
            return false;
        }
        let key = unhex(tenant_key).and_then(|b| <[u8; 32]>::try_from(b).ok());
        let sig = unhex(&self.signature).and_then(|b| <[u8; 64]>::try_from(b).ok());
        match (key.and_then(|k| VerifyingKey::from_bytes(&k).ok()), sig) {
            (Some(k), Some(s)) => k
                .verify(&self.canonical(), &Signature::from_bytes(&s))
                .is_ok(),
            _ => false,
        }
    }
}
