//! The hostile-request corpus (`tests/hostile/corpus.json`) against a live server (the
//! `consentry` binary on SQLite): oversized bodies, pixel bombs, truncated and polyglot images,
//! wrong content types, deep and huge JSON, huge numbers, unicode tricks and traversal in ids,
//! and expired, forged, revoked and foreign-tenant keys. Every request must get the 4xx of its
//! catalogue code, none a 5xx; the server must not panic, and its memory must come back to
//! where it was after the first pass.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use consentry_testkit::{photo, Scratch};
use consentry_types::ErrorCode;
use serde::Deserialize;
use serde_json::Value;

mod common;
use common::{bootstrap, Server, UNTHROTTLED};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    method: String,
    path: String,
    /// `admin`, `device`, `none`, `forged`, `expired`, `revoked`, `foreign`, `foreign_device`,
    /// or `raw:` and the whole Authorization header's value.
    key: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default)]
    body: Option<BodySpec>,
    /// The catalogue code; the status is the catalogue's for it.
    expect: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum BodySpec {
    Text(String),
    Hex(String),
    File(String),
    Repeat {
        unit: String,
        times: usize,
        #[serde(default)]
        prefix: String,
        #[serde(default)]
        suffix: String,
    },
    /// `multipart/form-data` (boundary `XyZ`) of (part name, corpus file) pairs.
    Multipart(Vec<(String, String)>),
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/hostile")
}

impl BodySpec {
    fn bytes(&self) -> Vec<u8> {
        let file = |name: &str| std::fs::read(corpus_dir().join(name)).unwrap();
        match self {
            BodySpec::Text(t) => t.as_bytes().to_vec(),
            BodySpec::Hex(h) => (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect(),
            BodySpec::File(name) => file(name),
            BodySpec::Repeat {
                unit,
                times,
                prefix,
                suffix,
            } => [prefix.as_str(), &unit.repeat(*times), suffix]
                .concat()
                .into_bytes(),
            BodySpec::Multipart(parts) => {
                let mut body = Vec::new();
                for (name, f) in parts {
                    body.extend_from_slice(
                        format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
                    );
                    body.extend_from_slice(&file(f));
                    body.extend_from_slice(b"\r\n");
                }
                body.extend_from_slice(b"--XyZ--\r\n");
                body
            }
        }
    }
}

/// The keys and ids the corpus names.
struct World {
    admin: String,
    device: String,
    expired: String,
    revoked: String,
    foreign: String,
    foreign_device: String,
    subject: String,
    foreign_subject: String,
}

impl World {
    fn authorization(&self, key: &str) -> Option<String> {
        let bearer = |k: &str| Some(format!("Bearer {k}"));
        match key {
            "admin" => bearer(&self.admin),
            "device" => bearer(&self.device),
            "expired" => bearer(&self.expired),
            "revoked" => bearer(&self.revoked),
            "foreign" => bearer(&self.foreign),
            "foreign_device" => bearer(&self.foreign_device),
            // The shape of a real key, never issued.
            "forged" => bearer(&format!("csk_{}", "Q".repeat(43))),
            "none" => None,
            other => Some(
                other
                    .strip_prefix("raw:")
                    .unwrap_or_else(|| panic!("unknown key {other}"))
                    .to_string(),
            ),
        }
    }

    fn path(&self, path: &str) -> String {
        path.replace("{subject}", &self.subject)
            .replace("{foreign_subject}", &self.foreign_subject)
    }
}

/// One request over its own connection: the status and the body as JSON, or why there was no
/// answer. The body is written from a second thread while the answer is read, so that a server
/// that answers early (413 after the first 10 MiB) and closes is heard before the reset.
fn send(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<(u16, Value), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let mut length = body.len().to_string();
    for (name, value) in headers {
        if name == "content-length-override" {
            length.clone_from(value);
        } else {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
    let mut writer = s.try_clone().unwrap();
    let wrote = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        // No half-close after the body: the server (like most) takes a client's end of
        // stream for a client that has gone.
        let _ = writer.write_all(&body);
    });
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw);
    wrote.join().unwrap();
    let raw = String::from_utf8_lossy(&raw);
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no answer ({read:?}, {raw:?})"))?;
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// Runs every case once; the failures, one line each.
fn run(addr: &str, world: &World, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        let mut headers = case.headers.clone();
        if let Some(auth) = world.authorization(&case.key) {
            headers.push(("Authorization".into(), auth));
        }
        let body = case.body.as_ref().map(BodySpec::bytes).unwrap_or_default();
        let (status, v) = match send(addr, &case.method, &world.path(&case.path), &headers, body) {
            Ok(answer) => answer,
            Err(e) => {
                failures.push(format!("{}: {e}", case.name));
                continue;
            }
        };
        let code = v["code"].as_str().unwrap_or("");
        let known = ErrorCode::ALL.iter().find(|c| c.as_str() == code);
        let expected = ErrorCode::ALL
            .iter()
            .find(|c| c.as_str() == case.expect)
            .unwrap_or_else(|| panic!("{}: {} is not in the catalogue", case.name, case.expect));
        if status >= 500
            || known.is_none()
            || code != case.expect
            || status != expected.http_status()
        {
            failures.push(format!(
                "{}: {status} {v} (expected {} {})",
                case.name,
                expected.http_status(),
                case.expect
            ));
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_request_gets_its_4xx_and_the_server_stays_whole() {
    let cases: Vec<Case> =
        serde_json::from_slice(&std::fs::read(corpus_dir().join("corpus.json")).unwrap()).unwrap();
    assert!(cases.len() >= 60, "{}", cases.len());
    for case in &cases {
        assert!(
            ErrorCode::ALL
                .iter()
                .any(|c| c.as_str() == case.expect && c.http_status() < 500),
            "{}: expects {}, not a 4xx catalogue code",
            case.name,
            case.expect
        );
    }

    let scratch = Scratch::new("cli_hostile").await;
    let db = scratch.sqlite_url("hostile");
    let key_dir = scratch.key_dir("hostile");
    let admin = bootstrap(&db, &key_dir, "Gate");
    let foreign = bootstrap(&db, &key_dir, "Elsewhere");
    let log = scratch.dir.join("server.log");
    // Five passes of the corpus come to ~250 requests per key within seconds.
    let mut server = Server::start_logging(
        &db,
        &key_dir,
        UNTHROTTLED,
        &[],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );

    let new_key = |key: &str, body: &str| {
        let (st, v) = server.call_json("POST", "/api/v1/keys", key, body);
        assert_eq!(st, 201, "{v}");
        (
            v["id"].as_str().unwrap().to_string(),
            v["key"].as_str().unwrap().to_string(),
        )
    };
    let (_, device) = new_key(&admin, r#"{"role":"device","site":"gate-1"}"#);
    let (_, foreign_device) = new_key(&foreign, r#"{"role":"device","site":"gate-9"}"#);
    let (revoked_id, revoked) = new_key(&admin, r#"{"role":"operator"}"#);
    assert_eq!(
        server
            .call(
                "DELETE",
                &format!("/api/v1/keys/{revoked_id}"),
                &admin,
                None
            )
            .0,
        204
    );
    let (expired_id, expired) = new_key(&admin, r#"{"role":"operator","expires_in_days":1}"#);
    {
        let pool = consentry_db::Db::connect(&db).await.unwrap();
        sqlx::query("UPDATE api_keys SET expires_at = 1 WHERE id = $1")
            .bind(&expired_id)
            .execute(pool.pool())
            .await
            .unwrap();
    }
    // A consenting, enrolled subject in this tenant, and one in the other.
    let (st, v) = server.call("POST", "/api/v1/subjects", &admin, None);
    assert_eq!(st, 201);
    let subject = v["id"].as_str().unwrap().to_string();
    let consent = r#"{"purpose":"verification","retention_days":30}"#;
    let (st, v) = server.call_json(
        "POST",
        &format!("/api/v1/subjects/{subject}/consents"),
        &admin,
        consent,
    );
    assert_eq!(st, 201, "{v}");
    let (st, v) = server.post_jpeg(
        &format!("/api/v1/subjects/{subject}/faces?purpose=verification"),
        &admin,
        &photo("obama.jpg"),
    );
    assert_eq!(st, 201, "{v}");
    let (st, v) = server.call("POST", "/api/v1/subjects", &foreign, None);
    assert_eq!(st, 201);
    let foreign_subject = v["id"].as_str().unwrap().to_string();

    let world = World {
        admin,
        device,
        expired,
        revoked,
        foreign,
        foreign_device,
        subject,
        foreign_subject,
    };
    let failures = run(&server.addr, &world, &cases);
    assert!(
        failures.is_empty(),
        "{} of {}:\n{}\nrunning: {}\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        server.running(),
        std::fs::read_to_string(&log).unwrap()
    );
    // A second pass lets the allocator's arenas and the pools reach their working size.
    let failures = run(&server.addr, &world, &cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let baseline = server.rss_kib();
    for _ in 0..3 {
        let failures = run(&server.addr, &world, &cases);
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
    let after = server.rss_kib();
    eprintln!("RSS after two passes {baseline} KiB, after three more {after} KiB");
    // A leak of one pass's bodies (tens of MiB) would not fit.
    assert!(
        after <= baseline + 16 * 1024,
        "RSS grew from {baseline} KiB to {after} KiB over three passes"
    );
    // The person's data is untouched: the enrolled face still verifies.
    let (st, v) = server.post_jpeg(
        &format!("/api/v1/verify?subject={}", world.subject),
        &world.device,
        &photo("obama2.jpg"),
    );
    assert_eq!((st, v["decision"].as_str()), (200, Some("allow")), "{v}");
    assert!(server.running(), "the server exited");
    drop(server);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.contains("panicked"), "{log}");
    scratch.finish().await;
}
