//! Passes end to end: a real server (the `consentry` binary on SQLite), `consentry pass issue /
//! trust / revocations / verify`, every refusal's exit status, a QR code read back from its
//! PNG, and the interoperability check with independent libraries (tests/interop/passes.py).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use consentry_testkit::Scratch;
use serde_json::Value;

mod common;
use common::{assets, bootstrap, consentry, Server};

/// `consentry pass verify …`: the exit status and the JSON printed.
fn verify(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["pass", "verify"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = consentry(&all);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap(), v)
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// The python of the venv `setup/fetch.py` makes with the pinned independent libraries.
fn interop_python() -> PathBuf {
    let py = assets().parent().unwrap().join("test-venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run python3 setup/fetch.py (it makes the interoperability venv)",
        py.display()
    );
    py
}

/// The id of the only tenant in a database.
async fn tenant_of(db: &str) -> String {
    use sqlx::Row;
    let db = consentry_db::Db::open(db).await.unwrap();
    let row = sqlx::query("SELECT id FROM tenants")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let id = row.get::<String, _>(0);
    db.pool().close().await;
    id
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_issued_by_the_server_verify_offline_and_with_independent_code() {
    let scratch = Scratch::new("cli_passes").await;
    let db = format!("sqlite://{}", scratch.dir.join("passes.db").display());
    let key_file = scratch.key_dir("passes");
    let admin = bootstrap(&db, &key_file, "Venue Group");
    let server = Server::start(&db, &key_file);
    let url = server.url();
    let dir = |name: &str| scratch.dir.join(name).to_str().unwrap().to_string();

    let (_, v) = server.call("POST", "/api/v1/subjects", &admin, None);
    let person = v["id"].as_str().unwrap().to_string();
    let consents = format!("/api/v1/subjects/{person}/consents");
    let (status, _) = server.call_json(
        "POST",
        &consents,
        &admin,
        r#"{"purpose":"pass","retention_days":30}"#,
    );
    assert_eq!(status, 201);
    let tenant = tenant_of(&db).await;

    // Issue, with the QR code written beside it.
    let qr = dir("pass.png");
    let out = consentry(&[
        "pass",
        "issue",
        "--server",
        &url,
        "--key",
        &admin,
        "--subject",
        &person,
        "--access",
        "site-12",
        "--valid-days",
        "2",
        "--qr",
        &qr,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let issued: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pass = issued["pass"].as_str().unwrap().to_string();
    let pass_id = issued["pass_id"].as_str().unwrap().to_string();
    assert!(pass.starts_with("CS1:"));
    let pass_file = dir("pass.txt");
    std::fs::write(&pass_file, &pass).unwrap();
    // And one signed with ES256, for verifiers that need it.
    let out = consentry(&[
        "pass",
        "issue",
        "--server",
        &url,
        "--key",
        &admin,
        "--subject",
        &person,
        "--access",
        "site-12",
        "--alg",
        "ES256",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let es256_file = dir("pass-es256.txt");
    std::fs::write(&es256_file, String::from_utf8(out.stdout).unwrap().trim()).unwrap();

    // The public lists need no key.
    let (trust, revs) = (dir("trust.json"), dir("revocations.json"));
    for (which, out_file) in [("trust", &trust), ("revocations", &revs)] {
        let out = consentry(&[
            "pass", which, "--server", &url, "--tenant", &tenant, "--out", out_file,
        ]);
        assert!(
            out.status.success(),
            "{which}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (rc, v) = verify(&[
        &pass,
        "--trust",
        &trust,
        "--revocations",
        &revs,
        "--verifier",
        "site-12",
    ]);
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v["decision"], "valid");
    assert_eq!(v["claims"]["access"], "site-12");
    assert_eq!(v["claims"]["pass_id"], pass_id.as_str());
    assert_eq!(v["revocation"]["checked"], true);
    // The same from the file and from the QR code's PNG.
    for arg in [&pass_file, &qr] {
        let (rc, v) = verify(&[arg, "--trust", &trust]);
        assert_eq!(
            (rc, v["claims"]["pass_id"].as_str()),
            (0, Some(pass_id.as_str())),
            "{arg}"
        );
        assert_eq!(v["revocation"]["checked"], false);
    }

    // Each refusal: its own code and exit status.
    let exp = v["claims"]["expires_at"].as_i64().unwrap();
    let nbf = v["claims"]["not_before"].as_i64().unwrap();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![pass.clone(), "--verifier".into(), "site-13".into()],
            17,
            "pass_wrong_verifier",
        ),
        (
            vec![pass.clone(), "--at".into(), exp.to_string()],
            13,
            "pass_expired",
        ),
        (
            vec![pass.clone(), "--at".into(), (nbf - 3600).to_string()],
            14,
            "pass_not_yet_valid",
        ),
        (
            vec![format!("{}a", &pass[..pass.len() - 1])],
            10,
            "pass_malformed",
        ),
        (vec!["CS1:NOT A PASS".into()], 10, "pass_malformed"),
        (
            vec![
                pass.clone(),
                "--revocations".into(),
                revs.clone(),
                "--at".into(),
                (nbf + 2 * 3600).to_string(),
                "--max-list-age-hours".into(),
                "1".into(),
            ],
            16,
            "revocation_list_stale",
        ),
    ];
    for (args, want_rc, want) in cases {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend_from_slice(&["--trust", &trust]);
        let (rc, v) = verify(&all);
        assert_eq!((rc, code(&v)), (want_rc, want), "{args:?}");
    }
    // Another tenant's trust list: unknown key.
    let other_key = scratch.key_dir("other");
    let other_db = format!("sqlite://{}", scratch.dir.join("other.db").display());
    bootstrap(&other_db, &other_key, "Elsewhere");
    let other = Server::start(&other_db, &other_key);
    let other_trust = dir("other-trust.json");
    let other_tenant = tenant_of(&other_db).await;
    let out = consentry(&[
        "pass",
        "trust",
        "--server",
        &other.url(),
        "--tenant",
        &other_tenant,
        "--out",
        &other_trust,
    ]);
    assert!(out.status.success());
    let (rc, v) = verify(&[&pass, "--trust", &other_trust]);
    assert_eq!((rc, code(&v)), (12, "pass_unknown_key"));

    // Revoked: on the next list, refused with its own status.
    let revoke = format!("/api/v1/subjects/{person}/passes/{pass_id}/revoke");
    assert_eq!(server.call("POST", &revoke, &admin, None).0, 200);
    let out = consentry(&[
        "pass",
        "revocations",
        "--server",
        &url,
        "--tenant",
        &tenant,
        "--out",
        &revs,
    ]);
    assert!(out.status.success());
    let (rc, v) = verify(&[&pass, "--trust", &trust, "--revocations", &revs]);
    assert_eq!((rc, code(&v)), (15, "pass_revoked"));
    // A list whose signature was edited is not used.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&revs).unwrap()).unwrap();
    let signed = doc["signed"].as_str().unwrap().to_string();
    let flipped = if signed.ends_with('A') { 'B' } else { 'A' };
    doc["signed"] = Value::from(format!("{}{flipped}", &signed[..signed.len() - 1]));
    let bad_revs = dir("bad-revocations.json");
    std::fs::write(&bad_revs, doc.to_string()).unwrap();
    let (rc, v) = verify(&[&pass, "--trust", &trust, "--revocations", &bad_revs]);
    assert_eq!((rc, code(&v)), (2, "invalid_request"), "{v}");

    // Code nobody here wrote: pycose, cbor2 and base45 verify our pass and refuse a tampered
    // copy; our verifier accepts their pass with a trusted key and refuses other keys.
    let out = Command::new(interop_python())
        .arg(repo().join("tests/interop/passes.py"))
        .args([
            "--consentry",
            env!("CARGO_BIN_EXE_consentry"),
            "--pass",
            &pass_file,
            "--trust",
            &trust,
        ])
        .args(["--pass-es256", &es256_file])
        .args(["--workdir", scratch.dir.to_str().unwrap()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        report.lines().filter(|l| l.starts_with("ok: ")).count(),
        7,
        "{report}"
    );
    drop(other);
    drop(server);
    scratch.finish().await;
}
