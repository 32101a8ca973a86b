//! What the fuzz targets share: the trust list they check against (an Ed25519 and a P-256
//! key, the keys the committed seeds are signed with).

use std::sync::OnceLock;

use consentry_pass::{PassKey, TrustList};

pub fn trust() -> &'static TrustList {
    static T: OnceLock<TrustList> = OnceLock::new();
    T.get_or_init(|| {
        let ed = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        let keys = [
            Some(PassKey::Ed25519(ed)),
            PassKey::p256_from_bytes(&[3; 32]),
        ];
        let keys: Vec<_> = keys.iter().flatten().map(PassKey::public).collect();
        TrustList::new("consentry/t1", &keys)
    })
}
