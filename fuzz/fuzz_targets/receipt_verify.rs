//! Any JSON as a consent receipt, checked against the tenant's published key: a verdict, never a
//! panic. Then, from the same input's fields, a receipt really signed by the tenant's key must
//! verify, and the same receipt with any field changed, the signature re-spelled, or checked
//! against another key must not.
#![no_main]

use consentry_core::ConsentReceipt;
use ed25519_dalek::{Signer, SigningKey};
use libfuzzer_sys::fuzz_target;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fuzz_target!(|data: &[u8]| {
    let tenant = SigningKey::from_bytes(&[5; 32]);
    let tenant_key = hex(tenant.verifying_key().as_bytes());
    if let Ok(receipt) = serde_json::from_slice::<ConsentReceipt>(data) {
        let _ = receipt.verify(&tenant_key);
        let _ = receipt.verify(&receipt.public_key.clone());
    }

    // A genuine receipt over fields taken from the input.
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\u{1f}');
    let field = |p: Option<&str>| p.unwrap_or("").to_string();
    let (consent_id, subject_id, purpose) = (
        field(parts.next()),
        field(parts.next()),
        field(parts.next()),
    );
    let number = |at: usize| {
        let mut b = [0u8; 8];
        for (i, o) in b.iter_mut().enumerate() {
            *o = data.get(at + i).copied().unwrap_or(0);
        }
        i64::from_le_bytes(b)
    };
    let mut receipt = ConsentReceipt {
        consent_id,
        tenant_id: "t1".into(),
        subject_id,
        purpose,
        retention_days: number(0),
        granted_at: number(8),
        public_key: tenant_key.clone(),
        signature: String::new(),
    };
    receipt.signature = hex(&tenant.sign(&receipt.canonical()).to_bytes());
    assert!(receipt.verify(&tenant_key));
    assert!(receipt.verify(&tenant_key.to_uppercase()));

    let other = hex(SigningKey::from_bytes(&[6; 32]).verifying_key().as_bytes());
    assert!(!receipt.verify(&other));
    let mut changed = receipt.clone();
    changed.retention_days = changed.retention_days.wrapping_add(1);
    assert!(!changed.verify(&tenant_key));
    let mut changed = receipt.clone();
    changed.subject_id.push('x');
    assert!(!changed.verify(&tenant_key));
    // The canonical encoding is length-prefixed: moving a character from one field to the
    // next must change what is signed.
    if let Some(c) = receipt.consent_id.chars().last() {
        let mut moved = receipt.clone();
        moved.consent_id.pop();
        moved.tenant_id.insert(0, c);
        assert!(!moved.verify(&tenant_key));
    }
    let mut respelled = receipt.clone();
    respelled.signature.replace_range(0..1, "+");
    assert!(!respelled.verify(&tenant_key));
});
