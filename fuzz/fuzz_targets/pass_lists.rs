//! Any bytes as a signed revocation list, any text as a trust list or a revocation list
//! document, and any bytes as base45 text: errors, never panics.
#![no_main]

use std::sync::OnceLock;

use consentry_pass::{base45, PassKey, RevocationList, TrustList};
use libfuzzer_sys::fuzz_target;

fn trust() -> &'static TrustList {
    static T: OnceLock<TrustList> = OnceLock::new();
    T.get_or_init(|| {
        let ed = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let keys = [Some(PassKey::Ed25519(ed)), PassKey::p256_from_bytes(&[3; 32])];
        let keys: Vec<_> = keys.iter().flatten().map(PassKey::public).collect();
        TrustList::new("consentry/t1", &keys)
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = RevocationList::open(data, trust());
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = TrustList::from_json(text);
        let _ = RevocationList::from_json(text, trust());
        if let Some(bytes) = base45::decode(text) {
            assert_eq!(base45::decode(&base45::encode(&bytes)).as_deref(), Some(&bytes[..]));
        }
    }
});
