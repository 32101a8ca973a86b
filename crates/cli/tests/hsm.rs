//! The key-encryption-key epochs in a PKCS#11 token (SoftHSM2, Debian `softhsm2`), end to end:
//! servers and `consentry admin rotate-keys` (the `consentry` binary) on SQLite, the epochs
//! generated inside the token and destroyed there. `.ci/run` installs SoftHSM2 and sets
//! CONSENTRY_REQUIRE_SOFTHSM=1, so there this test cannot skip; elsewhere, without the module, it
//! says so and passes.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use consentry_testkit::{photo, Scratch};
use serde_json::Value;

mod common;
use common::{consentry_env, Server};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epochs_in_a_pkcs11_token_rotate_and_a_backup_no_longer_opens() {
    if !Path::new(MODULE).exists() {
        assert!(
            std::env::var_os("CONSENTRY_REQUIRE_SOFTHSM").is_none(),
            "{MODULE} is missing: apt-get install softhsm2"
        );
        eprintln!("SKIPPED: {MODULE} is missing (apt-get install softhsm2)");
        return;
    }
    let scratch = Scratch::new("cli_hsm").await;
    let tokens = scratch.dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = scratch.dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let conf = conf.to_str().unwrap().to_string();
    let init = std::process::Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "consentry-test"])
        .args(["--pin", "246810", "--so-pin", "13579111"])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );

    let db = scratch.sqlite_url("hsm");
    let dir = scratch.key_dir("hsm");
    let dir_s = dir.to_str().unwrap();
    let envs = [
        ("SOFTHSM2_CONF", conf.as_str()),
        ("CONSENTRY_PKCS11_PIN", "246810"),
    ];
    let token = [
        "--pkcs11-module",
        MODULE,
        "--pkcs11-token",
        "consentry-test",
    ];
    let admin_cmd = |verb: &str, db: &str, extra: &[&str]| {
        let mut args = vec!["admin", verb, "--db", db, "--key-dir", dir_s, "--json"];
        args.extend_from_slice(&token);
        args.extend_from_slice(extra);
        consentry_env(&args, &envs)
    };
    let out = admin_cmd("bootstrap", &db, &["--tenant", "Counter"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let key: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = key["admin_key"].as_str().unwrap().to_string();

    let server = Server::start_with(&db, &dir, &token, &envs);
    let mut people = Vec::new();
    for face in ["obama.jpg", "biden.jpg"] {
        let (_, s) = server.call("POST", "/api/v1/subjects", &key, None);
        let s = s["id"].as_str().unwrap().to_string();
        let consent = format!("/api/v1/subjects/{s}/consents");
        let body = r#"{"purpose":"verification","retention_days":30}"#;
        assert_eq!(server.call_json("POST", &consent, &key, body).0, 201);
        let enrol = format!("/api/v1/subjects/{s}/faces?purpose=verification");
        let (status, v) = server.post_jpeg(&enrol, &key, &photo(face));
        assert_eq!(status, 201, "{v}");
        people.push(s);
    }
    let verify = |s: &str, face: &str| {
        let (status, v) =
            server.post_jpeg(&format!("/api/v1/verify?subject={s}"), &key, &photo(face));
        assert_eq!(status, 200, "{v}");
        v["decision"] == "allow"
    };
    assert!(verify(&people[0], "obama2.jpg"));
    // Nothing of the epochs is in the key directory: they are in the token.
    let files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!files.iter().any(|f| f.starts_with("kek-")), "{files:?}");

    // A file-level backup (the server idle), then a deletion and a rotation beside the server.
    let path = db.trim_start_matches("sqlite://");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::copy(
            format!("{path}{ext}"),
            scratch.dir.join(format!("backup.db{ext}")),
        );
    }
    let (status, _) = server.call(
        "DELETE",
        &format!("/api/v1/subjects/{}", people[0]),
        &key,
        None,
    );
    assert_eq!(status, 204);
    let out = admin_cmd("rotate-keys", &db, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["epoch"], "epoch-2", "{r}");
    assert_eq!(r["destroyed"], serde_json::json!(["epoch-1"]), "{r}");
    // The live server goes on with the new epoch.
    assert!(verify(&people[1], "biden.jpg"));
    assert!(!verify(&people[0], "obama2.jpg"));
    drop(server);

    // The backup, with the root key and the token as they are now: its data keys are under an epoch the token no
    // longer has, so nothing in it opens (the server refuses to start on it, saying so).
    let backup = format!("sqlite://{}", scratch.dir.join("backup.db").display());
    let out = admin_cmd("rotate-keys", &backup, &[]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("lacks key-encryption key epoch-1"), "{text}");
    scratch.finish().await;
}
