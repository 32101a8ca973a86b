use super::*;

const NOW: i64 = 1_800_000_000;

fn key(seed: u8) -> PassKey {
    PassKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
}

fn es256(seed: u8) -> PassKey {
    PassKey::p256_from_bytes(&[seed; 32]).unwrap()
}

fn claims() -> PassClaims {
    PassClaims {
        issuer: "consentry/t1".into(),
        subject: pseudonym(&[9; 32], "subject-1", "site-12"),
        verifier: "site-12".into(),
        access: "site-12".into(),
        issued_at: NOW,
        not_before: NOW,
        expires_at: NOW + 86_400,
        pass_id: hex(&[7; 16]),
    }
}

fn trust(keys: &[&PassKey]) -> TrustList {
    let keys: Vec<_> = keys.iter().map(|k| k.public()).collect();
    TrustList::new("consentry/t1", &keys)
}

fn at(now: i64) -> Check<'static> {
    Check {
        now,
        verifier: None,
        revocations: None,
        max_list_age: 86_400,
    }
}

#[test]
fn a_pass_round_trips_with_its_claims_and_nothing_personal() {
    let k = key(1);
    let pass = issue(&claims(), &k).unwrap();
    assert!(pass.starts_with("CS1:"));
    assert!(pass[4..]
        .bytes()
        .all(|b| b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(&b)));
    let got = verify(&pass, &trust(&[&key(2), &k]), &at(NOW + 10)).unwrap();
    assert_eq!(got, claims());
    // The pseudonym is the verifier's own: another verifier gets another one.
    assert_ne!(
        pseudonym(&[9; 32], "subject-1", "site-12"),
        pseudonym(&[9; 32], "subject-1", "site-13")
    );
    assert_eq!(pseudonym(&[9; 32], "subject-1", "site-12").len(), 32);
}

#[test]
fn each_refusal_has_its_own_error() {
    let k = key(1);
    let pass = issue(&claims(), &k).unwrap();
    let t = trust(&[&k]);
    assert_eq!(
        verify(&pass, &trust(&[&key(2)]), &at(NOW)),
        Err(PassError::UnknownKey)
    );
    assert_eq!(
        verify(&pass, &t, &at(NOW + 86_400)),
        Err(PassError::Expired)
    );
    assert_eq!(
        verify(&pass, &t, &at(NOW - 61)),
        Err(PassError::NotYetValid)
    );
    assert!(
        verify(&pass, &t, &at(NOW - 60)).is_ok(),
        "a minute of clock skew is allowed"
    );
    let other_site = Check {
        verifier: Some("site-13"),
        ..at(NOW)
    };
    assert_eq!(
        verify(&pass, &t, &other_site),
        Err(PassError::WrongVerifier)
    );
    let same_site = Check {
        verifier: Some("site-12"),
        ..at(NOW)
    };
    assert!(verify(&pass, &t, &same_site).is_ok());
    // A key with the right kid but another issuer's list: unknown.
    let mut foreign = t.clone();
    foreign.issuer = "consentry/t2".into();
    assert_eq!(
        verify(&pass, &foreign, &at(NOW)),
        Err(PassError::UnknownKey)
    );
}

#[test]
fn es256_passes_verify_beside_eddsa_ones() {
    let (ed, ec) = (key(1), es256(3));
    let t = trust(&[&ed, &ec]);
    let pass = issue(&claims(), &ec).unwrap();
    assert_eq!(
        unwrap(&pass).unwrap().protected.header.alg,
        Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256))
    );
    assert_eq!(verify(&pass, &t, &at(NOW)).unwrap(), claims());
    // Deterministic (RFC 6979): the same claims give the same pass.
    assert_eq!(issue(&claims(), &ec).unwrap(), pass);
    assert_eq!(
        verify(&pass, &trust(&[&ed]), &at(NOW)),
        Err(PassError::UnknownKey)
    );
    // An EdDSA header under the P-256 key's kid: refused.
    let mut sign1 = unwrap(&pass).unwrap();
    sign1.protected.header.alg = Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::EdDSA));
    sign1.protected.original_data = None;
    let cose = sign1.to_tagged_vec().unwrap();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut z, &cose).unwrap();
    let forged = format!("{PREFIX}{}", base45::encode(&z.finish().unwrap()));
    assert_eq!(verify(&forged, &t, &at(NOW)), Err(PassError::BadSignature));
    // The trust list carries it as an EC JWK and reads it back.
    let doc = t.to_json();
    assert_eq!(
        (
            doc["keys"][1]["kty"].as_str(),
            doc["keys"][1]["crv"].as_str()
        ),
        (Some("EC"), Some("P-256"))
    );
    assert_eq!(TrustList::from_json(&doc.to_string()).unwrap(), t);
    // A revocation list signed with it opens.
    let list = RevocationList {
        issuer: "consentry/t1".into(),
        version: 1,
        issued_at: NOW,
        revoked: vec![revocation_hash(&[7; 16])],
    };
    let opened = RevocationList::open(&list.sign(&ec).unwrap(), &t).unwrap();
    let check = Check {
        revocations: Some(&opened),
        ..at(NOW)
    };
    assert_eq!(verify(&pass, &t, &check), Err(PassError::Revoked));
}

#[test]
fn a_tampered_pass_fails_its_signature() {
    let k = key(1);
    let pass = issue(&claims(), &k).unwrap();
    let mut sign1 = unwrap(&pass).unwrap();
    let mut set = ClaimsSet::from_slice(sign1.payload.as_ref().unwrap()).unwrap();
    set.expiration_time = Some(Timestamp::WholeSeconds(NOW + 10 * 86_400));
    sign1.payload = Some(set.to_vec().unwrap());
    let cose = sign1.to_tagged_vec().unwrap();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut z, &cose).unwrap();
    let forged = format!("{PREFIX}{}", base45::encode(&z.finish().unwrap()));
    assert_eq!(
        verify(&forged, &trust(&[&k]), &at(NOW)),
        Err(PassError::BadSignature)
    );
}

#[test]
fn malformed_passes_are_errors_never_panics() {
    let k = key(1);
    let t = trust(&[&k]);
    let pass = issue(&claims(), &k).unwrap();
    for bad in [
        "",
        "CS1:",
        "HC1:NCFOXN%TS3DH",
        "CS1:lowercase",
        "CS1:A",
        "CS1:GGW",
        &pass[..pass.len() / 2],
        &format!("{pass}0"),
        &"CS1:".repeat(2000),
    ] {
        assert!(
            matches!(verify(bad, &t, &at(NOW)), Err(PassError::Malformed(_))),
            "{bad:.40}"
        );
    }
    // Every truncation and every single-character change is refused, never accepted.
    for n in 4..pass.len() {
        assert!(verify(&pass[..n], &t, &at(NOW)).is_err());
    }
    let alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    for i in (4..pass.len()).step_by(7) {
        for c in alphabet.chars().step_by(11) {
            let mut s = pass.clone();
            if s[i..].starts_with(c) {
                continue;
            }
            s.replace_range(i..i + 1, &c.to_string());
            assert!(verify(&s, &t, &at(NOW)).is_err(), "{i} {c}");
        }
    }
}

#[test]
fn revocation_lists_are_signed_fresh_and_name_passes_by_hash() {
    let k = key(1);
    let t = trust(&[&k]);
    let pass = issue(&claims(), &k).unwrap();
    let list = RevocationList {
        issuer: "consentry/t1".into(),
        version: 3,
        issued_at: NOW,
        revoked: vec![revocation_hash(&[7; 16])],
    };
    let signed = list.sign(&k).unwrap();
    let doc = list.to_json(&signed).to_string();
    let opened = RevocationList::from_json(&doc, &t).unwrap();
    assert_eq!(opened, list);
    let check = |now, list| Check {
        now,
        revocations: Some(list),
        ..at(now)
    };
    assert_eq!(
        verify(&pass, &t, &check(NOW + 5, &opened)),
        Err(PassError::Revoked)
    );
    let old = RevocationList {
        issued_at: NOW - 86_401,
        ..list.clone()
    };
    assert_eq!(
        verify(&pass, &t, &check(NOW, &old)),
        Err(PassError::RevocationListStale)
    );
    let empty = RevocationList {
        revoked: vec![],
        ..list.clone()
    };
    assert!(verify(&pass, &t, &check(NOW + 5, &empty)).is_ok());
    // Signed by another key, or edited: refused.
    assert!(matches!(
        RevocationList::open(&list.sign(&key(2)).unwrap(), &t),
        Err(PassError::RevocationListInvalid(_))
    ));
    let mut edited = signed.clone();
    let n = edited.len();
    edited[n - 70] ^= 1;
    assert!(RevocationList::open(&edited, &t).is_err());
}

#[test]
fn trust_lists_round_trip_and_refuse_a_kid_that_does_not_match() {
    let t = trust(&[&key(1), &key(2)]);
    let doc = t.to_json();
    assert_eq!(doc["keys"][0]["kty"], "OKP");
    assert_eq!(doc["keys"][0]["crv"], "Ed25519");
    assert_eq!(TrustList::from_json(&doc.to_string()).unwrap(), t);
    let mut bad = doc.clone();
    bad["keys"][0]["kid"] = bad["keys"][1]["kid"].clone();
    assert!(TrustList::from_json(&bad.to_string()).is_err());
    assert!(TrustList::from_json("{}").is_err());
}

/// Bilinear sample of `img` at (x, y), white outside.
fn sample(img: &GrayImage, x: f64, y: f64) -> u8 {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    if x < 0.0 || y < 0.0 || x >= w - 1.0 || y >= h - 1.0 {
        return 255;
    }
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let p = |dx: f64, dy: f64| f64::from(img.get_pixel((x0 + dx) as u32, (y0 + dy) as u32)[0]);
    let v = p(0.0, 0.0) * (1.0 - fx) * (1.0 - fy)
        + p(1.0, 0.0) * fx * (1.0 - fy)
        + p(0.0, 1.0) * (1.0 - fx) * fy
        + p(1.0, 1.0) * fx * fy;
    v.round() as u8
}

/// The code as a phone camera might see it: on a grey screen, seen at an angle (a projective
/// warp that also rotates it), blurred, and saved as a JPEG.
fn photographed(code: &GrayImage) -> Vec<u8> {
    photographed_with(code, 0.35, 0.00045, 1.6)
}

fn photographed_with(code: &GrayImage, angle: f64, persp_k: f64, sigma: f32) -> Vec<u8> {
    let (w, h) = (900u32, 900u32);
    let s = f64::from(code.width());
    let (sin, cos) = angle.sin_cos();
    let mut out = GrayImage::from_pixel(w, h, Luma([90]));
    for y in 0..h {
        for x in 0..w {
            // Inverse map: the destination point, centred, un-rotated, with a perspective term
            // that shrinks the far side.
            let (dx, dy) = (f64::from(x) - 450.0, f64::from(y) - 450.0);
            let persp = 1.0 + persp_k * dx;
            let (rx, ry) = (
                (cos * dx + sin * dy) * persp,
                (-sin * dx + cos * dy) * persp,
            );
            let (sx, sy) = (rx * s / 560.0 + s / 2.0, ry * s / 560.0 + s / 2.0);
            let v = sample(code, sx, sy);
            // Screens are never pure black or white.
            out.put_pixel(x, y, Luma([40 + (u16::from(v) * 170 / 255) as u8]));
        }
    }
    let blurred = image::imageops::blur(&out, sigma);
    let mut jpeg = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageLuma8(blurred)
        .write_to(&mut jpeg, ImageFormat::Jpeg)
        .unwrap();
    jpeg.into_inner()
}

use image::{GrayImage, ImageFormat, Luma};

#[test]
fn a_photographed_pass_is_still_read() {
    let k = key(1);
    let pass = issue(&claims(), &k).unwrap();
    let png = qr::png(&pass, 4).unwrap();
    assert_eq!(qr::read(&png).unwrap(), vec![pass.clone()]);
    assert!(qr::svg(&pass, 4).unwrap().starts_with("<?xml"));
    let code = qr::image(&pass, 4).unwrap();
    let photo = photographed(&code);
    if let Ok(dir) = std::env::var("CONSENTRY_TEST_ARTEFACTS") {
        std::fs::write(std::path::Path::new(&dir).join("pass-photo.jpg"), &photo).unwrap();
    }
    let read = qr::read(&photo).unwrap();
    assert_eq!(read, vec![pass.clone()]);
    assert!(verify(&read[0], &trust(&[&k]), &at(NOW)).is_ok());
    // Other angles, tilts and blurs (the detector fails at some sizes; the reader tries others).
    for angle in [0.0, 0.2, 0.35, -0.5] {
        for tilt in [0.0002, 0.00045] {
            for blur in [1.0, 1.6] {
                let photo = photographed_with(&code, angle, tilt, blur);
                assert_eq!(
                    qr::read(&photo).unwrap(),
                    vec![pass.clone()],
                    "{angle} {tilt} {blur}"
                );
            }
        }
    }
    assert_eq!(qr::read(b"not an image"), Err(qr::ReadError::NotAnImage));
    let mut png = std::io::Cursor::new(Vec::new());
    GrayImage::from_pixel(64, 64, Luma([255]))
        .write_to(&mut png, ImageFormat::Png)
        .unwrap();
    assert_eq!(qr::read(png.get_ref()), Err(qr::ReadError::NoCode));
}

/// The fuzz targets' seed corpora (fuzz/corpus/…) hold a valid pass, a signed revocation list
/// and a trust list made with the key the targets trust: they must stay what the code makes
/// (`CONSENTRY_WRITE_FUZZ_SEEDS=1` writes them again after a format change).
#[test]
fn the_fuzz_seeds_are_what_the_code_makes() {
    let (k, ec) = (key(1), es256(3));
    let t = trust(&[&k, &ec]);
    let pass = issue(&claims(), &k).unwrap();
    let list = RevocationList {
        issuer: "consentry/t1".into(),
        version: 2,
        issued_at: NOW,
        revoked: vec![revocation_hash(&[7; 16]), revocation_hash(&[8; 16])],
    };
    let signed = list.sign(&k).unwrap();
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("pass_verify/valid-pass", pass.clone().into_bytes()),
        (
            "pass_verify/valid-es256-pass",
            issue(&claims(), &ec).unwrap().into_bytes(),
        ),
        ("pass_lists/revocation-list.cose", signed.clone()),
        (
            "pass_lists/revocation-list.json",
            list.to_json(&signed).to_string().into_bytes(),
        ),
        (
            "pass_lists/trust-list.json",
            t.to_json().to_string().into_bytes(),
        ),
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (name, bytes) in seeds {
        let path = root.join(name);
        if std::env::var_os("CONSENTRY_WRITE_FUZZ_SEEDS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name}");
    }
}

#[test]
fn hex_is_digits_only() {
    assert_eq!(crate::unhex("0aFf"), Some(vec![0x0a, 0xff]));
    // `u8::from_str_radix` alone would read "+a" as 0x0a: one value, two spellings.
    for bad in ["+a", "-0", " a", "0g", "abc", "\u{e9}0"] {
        assert_eq!(crate::unhex(bad), None, "{bad:?}");
    }
}
