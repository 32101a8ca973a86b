use crate::{
    DataKey, Kek, KeyContext, TemplateContext, TemplateTransform, TransformSecret, VaultError,
};

fn unit(seed: u64, dim: usize) -> Vec<f32> {
    let mut s = seed | 1;
    let mut v: Vec<f32> = (0..dim)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

const T: TemplateContext<'static> = TemplateContext {
    tenant: "t1",
    subject: "s1",
    template: "f1",
    purpose: "verification",
    model: "sface-int8",
    last_used_at: 1_000,
    expires_at: 2_000,
};

#[test]
fn transform_preserves_scores_and_is_deterministic() {
    let secret = TransformSecret::generate();
    let q = TemplateTransform::derive(&secret, 128);
    let again =
        TemplateTransform::derive(&TransformSecret::from_hex(&secret.to_hex()).unwrap(), 128);
    for i in 0..20 {
        let (a, b) = (unit(i, 128), unit(i + 100, 128));
        let (qa, qb) = (q.apply(&a).unwrap(), q.apply(&b).unwrap());
        assert!((dot(&qa, &qb) - dot(&a, &b)).abs() < 1e-5);
        assert!((dot(&qa, &qa) - 1.0).abs() < 1e-5);
        assert_eq!(qa, again.apply(&a).unwrap());
        let back = q.invert(&qa).unwrap();
        assert!(a.iter().zip(&back).all(|(x, y)| (x - y).abs() < 1e-5));
    }
    assert_eq!(
        q.apply(&[1.0; 3]),
        Err(VaultError::Dimension { got: 3, want: 128 })
    );
}

#[test]
fn two_tenants_templates_of_one_face_are_unlinkable() {
    let (q1, q2) = (
        TemplateTransform::derive(&TransformSecret::generate(), 128),
        TemplateTransform::derive(&TransformSecret::generate(), 128),
    );
    // The same face at two tenants: transformed templates look unrelated (|cos| near 0, as
    // for two random 128-d vectors, whose cosine has standard deviation 1/sqrt(128) = 0.09).
    let mut worst = 0f32;
    for i in 0..50 {
        let face = unit(i, 128);
        worst = worst.max(dot(&q1.apply(&face).unwrap(), &q2.apply(&face).unwrap()).abs());
    }
    assert!(worst < 0.4, "{worst}");
}

#[test]
fn sealed_templates_open_only_in_their_own_record() {
    let key = DataKey::generate();
    let t = unit(1, 128);
    let sealed = key.seal_template(T, &t).unwrap();
    assert_eq!(sealed.len(), 1 + 24 + 128 * 4 + 16);
    assert_eq!(
        key.open_template(T, &sealed).unwrap().as_slice(),
        t.as_slice()
    );
    // Same plaintext twice: different ciphertexts (random nonces).
    assert_ne!(sealed, key.seal_template(T, &t).unwrap());
    for other in [
        TemplateContext { tenant: "t2", ..T },
        TemplateContext { subject: "s2", ..T },
        TemplateContext {
            template: "f2",
            ..T
        },
        TemplateContext {
            purpose: "access",
            ..T
        },
        TemplateContext {
            model: "sface-fp32",
            ..T
        },
        TemplateContext {
            last_used_at: 999,
            ..T
        },
        TemplateContext {
            expires_at: 2_001,
            ..T
        },
    ] {
        assert_eq!(
            key.open_template(other, &sealed).map(|_| ()),
            Err(VaultError::Unopenable)
        );
    }
    assert_eq!(
        DataKey::generate().open_template(T, &sealed).map(|_| ()),
        Err(VaultError::Unopenable)
    );
    let mut tampered = sealed.clone();
    tampered[40] ^= 1;
    assert_eq!(
        key.open_template(T, &tampered).map(|_| ()),
        Err(VaultError::Unopenable)
    );
    assert_eq!(
        key.open_template(T, &sealed[..20]).map(|_| ()),
        Err(VaultError::Malformed)
    );
    // The envelope's version is bound too: a version-2 envelope relabelled 1 opens neither way.
    let mut relabelled = sealed.clone();
    relabelled[0] = 1;
    assert!(key.open_template(T, &relabelled).is_err());
    assert!(key.open_template_v1(T, &relabelled).is_err());
}

#[test]
fn version_1_envelopes_open_only_to_be_upgraded() {
    let key = DataKey::generate();
    let t = unit(2, 128);
    let old = key.seal_template_v1(T, &t).unwrap();
    assert_eq!(old[0], 1);
    assert_eq!(
        key.open_template(T, &old).map(|_| ()),
        Err(VaultError::Malformed)
    );
    let opened = key.open_template_v1(T, &old).unwrap();
    let new = key.seal_template(T, &opened).unwrap();
    assert_eq!(new[0], crate::TEMPLATE_VERSION);
    assert_eq!(key.open_template(T, &new).unwrap().as_slice(), t.as_slice());
}

#[test]
fn data_keys_unwrap_only_with_their_kek_and_subject() {
    let (kek, other) = (Kek::generate(), Kek::generate());
    let ctx = KeyContext {
        tenant: "t1",
        subject: "s1",
    };
    let dk = DataKey::generate();
    let sealed = dk.seal_template(T, &unit(3, 128)).unwrap();
    let wrapped = kek.wrap(&dk, ctx).unwrap();
    let back = kek.unwrap(&wrapped, ctx).unwrap();
    assert!(back.open_template(T, &sealed).is_ok());
    assert!(other.unwrap(&wrapped, ctx).is_err());
    assert!(kek
        .unwrap(
            &wrapped,
            KeyContext {
                subject: "s2",
                ..ctx
            }
        )
        .is_err());
    // Crypto-shredding: once the wrapped key is gone, no key that exists opens the template.
    drop(wrapped);
    drop(back);
    drop(dk);
    assert!(DataKey::generate().open_template(T, &sealed).is_err());
}

#[test]
fn keys_parse_print_and_redact() {
    let kek = Kek::generate();
    let hex = kek.to_hex();
    assert_eq!(hex.len(), 64);
    assert!(Kek::from_hex(&hex).unwrap() == kek);
    assert_eq!(Kek::from_hex("abc").map(|_| ()), Err(VaultError::KeyFormat));
    assert_eq!(
        Kek::from_hex(&"zz".repeat(32)).map(|_| ()),
        Err(VaultError::KeyFormat)
    );
    // `from_str_radix` alone takes a sign: "+f" would read as 0x0f.
    assert_eq!(
        Kek::from_hex(&format!("+{}", &hex[1..])).map(|_| ()),
        Err(VaultError::KeyFormat)
    );
    let debug = format!(
        "{kek:?} {:?} {:?}",
        DataKey::generate(),
        TransformSecret::generate()
    );
    assert!(
        !debug.contains(hex.as_str()) && debug.contains("redacted"),
        "{debug}"
    );
    assert_eq!(kek.id().len(), 16);
    assert_ne!(kek.id(), Kek::generate().id());
}
