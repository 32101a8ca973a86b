//! Crash consistency: a real server (the `consentry` binary) on SQLite and on PostgreSQL,
//! driven by concurrent enrolments, deletions and consent changes, is killed with SIGKILL at a
//! moment that differs per trial, then started again on the same database and key store.
//! Afterwards every acknowledged write is there, no half-write is visible (no template without
//! its data key or its consent, no template that does not open), the gallery answers as the
//! database says, and the audit log still verifies against a checkpoint saved before the
//! trials.
//!
//! `CONSENTRY_CRASH_TRIALS` sets the trials per backend (default 3; the long run in
//! docs/fuzzing.md uses 100).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consentry_db::Db;
use consentry_testkit::{photo, Scratch};
use serde_json::Value;

mod common;
use common::{audit, bootstrap, Server, UNTHROTTLED};

/// A request that may fail (the server is killed under it): the status and body, or `None`.
fn try_call(
    addr: &str,
    method: &str,
    path: &str,
    key: &str,
    content_type: &str,
    body: &[u8],
) -> Option<(u16, Value)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: {content_type}\r\nX-Consentry-Purpose: crash trial\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw);
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// What the server acknowledged (a 2xx answer) for one subject, and which changes were sent
/// at all: a request the kill cut off before its answer may or may not have committed.
#[derive(Clone, Debug, Default)]
struct Acked {
    /// `access` (1:N, in the gallery) or `verification` (1:1).
    purpose: &'static str,
    created: bool,
    consent: Option<String>,
    enrolled: bool,
    withdraw_sent: bool,
    withdrawn: bool,
    delete_sent: bool,
    deleted: bool,
}

/// One client: subjects created, given consent, enrolled, then some withdrawn or deleted,
/// until the server stops answering.
fn client(
    addr: &str,
    admin: &str,
    seed: u64,
    purpose: &'static str,
    acked: &Mutex<BTreeMap<String, Acked>>,
    stop: &AtomicBool,
) {
    let face = photo("obama.jpg");
    let mut n = seed;
    while !stop.load(Ordering::Relaxed) {
        let Some((201, v)) = try_call(
            addr,
            "POST",
            "/api/v1/subjects",
            admin,
            "application/json",
            b"",
        ) else {
            return;
        };
        let id = v["id"].as_str().unwrap().to_string();
        let note = |f: &dyn Fn(&mut Acked)| f(acked.lock().unwrap().entry(id.clone()).or_default());
        note(&|a| {
            a.created = true;
            a.purpose = purpose;
        });
        let consent = format!(r#"{{"purpose":"{purpose}","retention_days":30}}"#);
        let Some((201, v)) = try_call(
            addr,
            "POST",
            &format!("/api/v1/subjects/{id}/consents"),
            admin,
            "application/json",
            consent.as_bytes(),
        ) else {
            return;
        };
        let cid = v["consent_id"]
            .as_str()
            .or(v["id"].as_str())
            .unwrap()
            .to_string();
        note(&|a| a.consent = Some(cid.clone()));
        let path = format!("/api/v1/subjects/{id}/faces?purpose={purpose}");
        let Some((201, _)) = try_call(addr, "POST", &path, admin, "image/jpeg", &face) else {
            return;
        };
        note(&|a| a.enrolled = true);
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        match (n >> 33) % 3 {
            0 => {
                let path = format!("/api/v1/subjects/{id}/consents/{cid}");
                note(&|a| a.withdraw_sent = true);
                let Some((200 | 204, _)) =
                    try_call(addr, "DELETE", &path, admin, "application/json", b"")
                else {
                    return;
                };
                note(&|a| a.withdrawn = true);
            }
            1 => {
                note(&|a| a.delete_sent = true);
                let Some((200 | 204, _)) = try_call(
                    addr,
                    "DELETE",
                    &format!("/api/v1/subjects/{id}"),
                    admin,
                    "application/json",
                    b"",
                ) else {
                    return;
                };
                note(&|a| a.deleted = true);
            }
            _ => {}
        }
    }
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// The checks after a restart; the number of subjects with a template that opened.
/// The checks after a restart, for the subjects of one trial (`acked`, all made at or after
/// `since`, Unix seconds) and for the whole database; the number of templates in it.
async fn check(
    server: &Server,
    db_url: &str,
    device: &str,
    acked: &BTreeMap<String, Acked>,
    since: i64,
) -> usize {
    let probe = photo("obama2.jpg");
    let decide = |path: &str| {
        let (status, v) = try_call(&server.addr, "POST", path, device, "image/jpeg", &probe)
            .expect("the restarted server answers");
        assert_eq!(status, 200, "{path}: {v}");
        v
    };
    let verify = |id: &str| decide(&format!("/api/v1/verify?subject={id}"));
    let db = Db::connect(db_url).await.unwrap();
    let templates = |purpose: &'static str| {
        let db = &db;
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT DISTINCT subject_id FROM templates WHERE purpose = $1",
            )
            .bind(purpose)
            .fetch_all(db.pool())
            .await
            .unwrap()
            .into_iter()
            .collect::<BTreeSet<String>>()
        }
    };
    let in_gallery = templates("access").await;
    // Read from the database, not through the API: an admin key that reads this many
    // subjects is suspended by the abuse rules, as it should be.
    for (id, a) in acked {
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subjects WHERE id = $1")
            .bind(id)
            .fetch_one(db.pool())
            .await
            .unwrap();
        if a.deleted {
            assert_eq!(exists, 0, "{id}: deletion acknowledged, yet it is there");
        } else if a.created && !a.delete_sent {
            assert_eq!(exists, 1, "{id}: creation acknowledged, yet it is gone");
        }
        let kept = a.enrolled && !a.withdraw_sent && !a.delete_sent;
        let removed = a.withdrawn || a.deleted;
        if a.purpose == "access" {
            assert!(
                !kept || in_gallery.contains(id),
                "{id}: enrolment acknowledged, yet no template"
            );
            assert!(
                !removed || !in_gallery.contains(id),
                "{id}: removal acknowledged, yet a template"
            );
            continue;
        }
        let v = verify(id);
        let allowed = v["decision"] == "allow";
        assert!(!kept || allowed, "{id}: enrolment acknowledged, yet {v}");
        assert!(!removed || !allowed, "{id}: withdrawn or deleted, yet {v}");
    }
    // No half-writes: every template has its subject's data key and a live consent.
    let orphans = count(
        &db,
        "SELECT COUNT(*) FROM templates t WHERE NOT EXISTS (SELECT 1 FROM data_keys d WHERE d.subject_id = t.subject_id)",
    )
    .await;
    assert_eq!(orphans, 0, "templates without their data key");
    let unconsented = count(
        &db,
        "SELECT COUNT(*) FROM templates t WHERE NOT EXISTS (SELECT 1 FROM consents c WHERE c.subject_id = t.subject_id AND c.purpose = t.purpose AND c.withdrawn_at IS NULL)",
    )
    .await;
    assert_eq!(unconsented, 0, "templates without a live consent");
    // Every template this trial wrote opens (its key survived), acknowledged or not (a write
    // the kill cut off before its answer may have committed).
    let recent: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT t.subject_id FROM templates t JOIN subjects s ON s.id = t.subject_id WHERE t.purpose = 'verification' AND s.created_at >= $1",
    )
    .bind(since)
    .fetch_all(db.pool())
    .await
    .unwrap();
    for id in &recent {
        let v = verify(id);
        assert_eq!(
            v["decision"], "allow",
            "{id} has a template in the database, yet {v}"
        );
    }
    // The gallery, loaded again at the start, is the database's: 1:N finds someone who has an
    // access template there (they are all the same face), or no one when there is none.
    let v = decide("/api/v1/identify");
    match v["subject"].as_str() {
        Some(found) => assert!(
            in_gallery.contains(found),
            "identify found {found}, who has no access template"
        ),
        None => assert!(
            in_gallery.is_empty(),
            "identify found no one among {}: {v}",
            in_gallery.len()
        ),
    }
    let total = count(&db, "SELECT COUNT(*) FROM templates").await;
    db.pool().close().await;
    usize::try_from(total).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_and_nothing_half_written_shows() {
    let trials: u64 = std::env::var("CONSENTRY_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let scratch = Scratch::new("cli_crash").await;
    for (b, db_url) in scratch.backends().iter().enumerate() {
        let key_dir = scratch.key_dir(&format!("crash{b}"));
        let admin = bootstrap(db_url, &key_dir, "Crash");
        let mut server = Server::start_with(db_url, &key_dir, UNTHROTTLED, &[]);
        let device = server.device_key(&admin);
        let checkpoint = scratch.dir.join(format!("crash{b}.checkpoint.json"));
        let cp = checkpoint.to_str().unwrap();
        let (code, v) = audit(&["checkpoint", "--out", cp], &server, &admin);
        assert_eq!(code, 0, "{v}");

        let (mut acknowledged, mut cut_off) = (0, 0);
        for trial in 0..trials {
            let since = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
                - 1;
            let acked = Arc::new(Mutex::new(BTreeMap::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let workers: Vec<_> = (0..3)
                .map(|w| {
                    let (addr, admin) = (server.addr.clone(), admin.clone());
                    let (acked, stop) = (acked.clone(), stop.clone());
                    {
                        // One client of three enrols for the gallery (1:N), two for 1:1.
                        let purpose = if w == 0 { "access" } else { "verification" };
                        std::thread::spawn(move || {
                            client(&addr, &admin, trial * 10 + w, purpose, &acked, &stop)
                        })
                    }
                })
                .collect();
            // 0.3 to 2.5 s into the trial, spread evenly over the trials.
            let at = 300 + (trial * 7919) % 2200;
            std::thread::sleep(Duration::from_millis(at));
            server.kill();
            stop.store(true, Ordering::Relaxed);
            for w in workers {
                w.join().unwrap();
            }
            let acked = Arc::try_unwrap(acked).unwrap().into_inner().unwrap();
            acknowledged += acked.len();
            // Subjects whose next step was sent but never answered.
            cut_off += acked
                .values()
                .filter(|a| {
                    (a.withdraw_sent && !a.withdrawn)
                        || (a.delete_sent && !a.deleted)
                        || !a.enrolled
                })
                .count();
            server = Server::start_with(db_url, &key_dir, UNTHROTTLED, &[]);
            let templates = check(&server, db_url, &device, &acked, since).await;
            eprintln!(
                "backend {b} trial {trial}: killed at {at} ms; {} subjects this trial, {templates} templates in all",
                acked.len()
            );
        }
        assert!(acknowledged > 0);
        let (code, v) = audit(&["verify", "--checkpoint", cp], &server, &admin);
        assert_eq!(code, 0, "{v}");
        eprintln!("backend {b}: {acknowledged} subjects, {cut_off} of them cut off by a kill");
    }
    scratch.finish().await;
}
