//! Any text as a pass: an error or a verified pass, never a panic. Also fed to the decoder as
//! raw `COSE_Sign1` bytes (behind a valid prefix, base45 and zlib), so the CBOR and COSE
//! parsers see arbitrary input, not only what survives base45 and zlib.
#![no_main]

use std::io::Write;

use consentry_pass::{base45, verify, Check, PREFIX};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
use common::trust;

fuzz_target!(|data: &[u8]| {
    let check = Check {
        now: 1_800_000_000,
        verifier: Some("site-12"),
        revocations: None,
        max_list_age: 86_400,
    };
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = verify(text, trust(), &check);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    if z.write_all(data).is_ok() {
        if let Ok(zipped) = z.finish() {
            let _ = verify(
                &format!("{PREFIX}{}", base45::encode(&zipped)),
                trust(),
                &check,
            );
        }
    }
});
