//! Any bytes as a signed revocation list, any text as a trust list or a revocation list
//! document, and any bytes as base45 text: errors, never panics.
#![no_main]

use consentry_pass::{base45, RevocationList, TrustList};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
use common::trust;

fuzz_target!(|data: &[u8]| {
    let _ = RevocationList::open(data, trust());
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = TrustList::from_json(text);
        let _ = RevocationList::from_json(text, trust());
        if let Some(bytes) = base45::decode(text) {
            assert_eq!(
                base45::decode(&base45::encode(&bytes)).as_deref(),
                Some(&bytes[..])
            );
        }
    }
});
