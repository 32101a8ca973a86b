//! The audit log end to end: real servers (the `consentry` binary) on SQLite and PostgreSQL,
//! `consentry audit checkpoint / export / verify`, and edits made directly in the database.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use consentry_db::Db;
use consentry_testkit::Scratch;
use serde_json::Value;

mod common;
use common::{audit, bootstrap, consentry, Server};

async fn exec(db: &Db, sql: &str) {
    sqlx::query(sql).execute(db.pool()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifier_catches_rows_changed_removed_or_reordered_in_the_database() {
    let scratch = Scratch::new("cli_audit").await;
    for (n, db_url) in scratch.backends().iter().enumerate() {
        let key_file = scratch.key_dir(&n.to_string());
        let admin = bootstrap(db_url, &key_file, "Residence West");
        let server = Server::start(db_url, &key_file);
        // Before it listens, the server says which templates it makes and on what CPU.
        assert!(
            server
                .banner
                .iter()
                .any(|l| l
                    .starts_with("consentry: face templates sface-2021dec-int8w7; CPU AVX2 + FMA")),
            "{:?}",
            server.banner
        );

        let mut subjects = Vec::new();
        for _ in 0..6 {
            let (status, v) = server.call("POST", "/api/v1/subjects", &admin, None);
            assert_eq!(status, 201);
            subjects.push(v["id"].as_str().unwrap().to_string());
        }
        // A read, with its stated purpose, lands in the log and in the person's view.
        let path = format!("/api/v1/subjects/{}", subjects[0]);
        assert_eq!(server.call("GET", &path, &admin, Some("case 7")).0, 200);
        let (status, v) = server.call("GET", &format!("{path}/accesses"), &admin, None);
        assert_eq!(status, 200);
        let accesses = v["accesses"].as_array().unwrap();
        assert_eq!(accesses[0]["action"], "subject.read");
        assert_eq!(accesses[0]["purpose"], "case 7");
        assert_eq!(accesses[1]["action"], "subject.create");

        let cp = scratch.dir.join(format!("{n}.checkpoint.json"));
        let (code, v) = audit(
            &["checkpoint", "--out", cp.to_str().unwrap()],
            &server,
            &admin,
        );
        assert_eq!(code, 0, "{v}");
        // tenant.create, key.create, 6 × subject.create, subject.read
        assert_eq!(v["tree_size"], 9);
        let cp = cp.to_str().unwrap();

        // Appends after the checkpoint verify.
        server.call("POST", "/api/v1/subjects", &admin, None);
        let (code, v) = audit(&["verify", "--checkpoint", cp], &server, &admin);
        assert_eq!(code, 0, "{v}");
        assert_eq!(
            (v["ok"].as_bool(), v["current_size"].as_u64()),
            (Some(true), Some(10))
        );

        // An export verifies without the server.
        let export = scratch.dir.join(format!("{n}.export.json"));
        let (code, _) = audit(
            &["export", "--out", export.to_str().unwrap()],
            &server,
            &admin,
        );
        assert_eq!(code, 0);
        let out = consentry(&[
            "audit",
            "verify",
            "--checkpoint",
            cp,
            "--export",
            export.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );

        let db = Db::connect(db_url).await.unwrap();
        // Changed: the read of entry 8 made to look like another purpose.
        let original: Vec<u8> = sqlx::query_scalar("SELECT entry FROM audit_entries WHERE idx = 8")
            .fetch_one(db.pool())
            .await
            .unwrap();
        let edited = String::from_utf8(original.clone())
            .unwrap()
            .replace("case 7", "case 8");
        sqlx::query("UPDATE audit_entries SET entry = $1 WHERE idx = 8")
            .bind(edited.into_bytes())
            .execute(db.pool())
            .await
            .unwrap();
        let (code, v) = audit(&["verify", "--checkpoint", cp], &server, &admin);
        assert_eq!(code, 1, "{v}");
        assert_eq!(
            (v["finding"].as_str(), v["index"].as_u64()),
            (Some("altered"), Some(8))
        );
        sqlx::query("UPDATE audit_entries SET entry = $1 WHERE idx = 8")
            .bind(original)
            .execute(db.pool())
            .await
            .unwrap();
        assert_eq!(audit(&["verify", "--checkpoint", cp], &server, &admin).0, 0);

        // Reordered: entries 3 and 4 swapped.
        exec(&db, "UPDATE audit_entries SET idx = -1 WHERE idx = 3").await;
        exec(&db, "UPDATE audit_entries SET idx = 3 WHERE idx = 4").await;
        exec(&db, "UPDATE audit_entries SET idx = 4 WHERE idx = -1").await;
        let (code, v) = audit(&["verify", "--checkpoint", cp], &server, &admin);
        assert_eq!(code, 1, "{v}");
        assert_eq!(
            (v["finding"].as_str(), v["index"].as_u64()),
            (Some("altered"), Some(3))
        );
        exec(&db, "UPDATE audit_entries SET idx = -1 WHERE idx = 3").await;
        exec(&db, "UPDATE audit_entries SET idx = 3 WHERE idx = 4").await;
        exec(&db, "UPDATE audit_entries SET idx = 4 WHERE idx = -1").await;

        // Removed: entry 5 deleted.
        exec(&db, "DELETE FROM audit_entries WHERE idx = 5").await;
        let (code, v) = audit(&["verify", "--checkpoint", cp], &server, &admin);
        assert_eq!(code, 1, "{v}");
        assert_eq!(
            (v["finding"].as_str(), v["index"].as_u64()),
            (Some("missing"), Some(5))
        );

        // The tail removed and the head moved back: the log shrank.
        exec(&db, "DELETE FROM audit_entries WHERE idx >= 5").await;
        exec(&db, "UPDATE audit_heads SET size = 5").await;
        let (code, v) = audit(&["verify", "--checkpoint", cp], &server, &admin);
        assert_eq!(code, 1, "{v}");
        assert_eq!(v["finding"], "shrunk");
        db.pool().close().await;
        drop(server);
    }
    scratch.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_database_append_to_one_tree() {
    let scratch = Scratch::new("cli_audit_nodes").await;
    let db_url = scratch.pg_url();
    let key_file = scratch.key_dir("shared");
    let admin = bootstrap(&db_url, &key_file, "Two Nodes");
    let a = Server::start(&db_url, &key_file);
    let b = Server::start(&db_url, &key_file);
    let cp = scratch.dir.join("start.json");
    assert_eq!(
        audit(&["checkpoint", "--out", cp.to_str().unwrap()], &a, &admin).0,
        0
    );

    // Four clients, two on each node, creating subjects at once.
    let per_client = 25;
    std::thread::scope(|s| {
        for server in [&a, &b, &a, &b] {
            let admin = admin.clone();
            s.spawn(move || {
                for _ in 0..per_client {
                    let (status, v) = server.call("POST", "/api/v1/subjects", &admin, None);
                    assert_eq!(status, 201, "{v}");
                }
            });
        }
    });
    for server in [&a, &b] {
        let (code, v) = audit(
            &["verify", "--checkpoint", cp.to_str().unwrap()],
            server,
            &admin,
        );
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["current_size"].as_u64(), Some(2 + 4 * per_client));
    }
    drop((a, b));
    scratch.finish().await;
}

/// One request from a chosen source address on the loopback range.
async fn call_from(
    source: &str,
    server: &Server,
    method: &str,
    path: &str,
    key: &str,
    json: &str,
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut s = socket.connect(server.addr.parse().unwrap()).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        server.addr,
        json.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap();
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A device key used from a second network is suspended at its first request from there; an
/// admin's reinstatement makes that network known.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_used_from_a_new_network_is_suspended() {
    let scratch = Scratch::new("cli_network").await;
    let db = scratch.sqlite_url("net");
    let key_file = scratch.key_dir("net");
    let admin = bootstrap(&db, &key_file, "Networks");
    let server = Server::start(&db, &key_file);
    let (st, v) = call_from(
        "127.0.0.1",
        &server,
        "POST",
        "/api/v1/keys",
        &admin,
        r#"{"role":"device","site":"lobby"}"#,
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (id, device) = (
        v["id"].as_str().unwrap().to_string(),
        v["key"].as_str().unwrap().to_string(),
    );
    let decide = r#"{"card":"nobody"}"#;
    for _ in 0..3 {
        assert_eq!(
            call_from(
                "127.0.0.1",
                &server,
                "POST",
                "/api/v1/access/decide",
                &device,
                decide
            )
            .await
            .0,
            200
        );
    }
    // 127.0.0.2 is the same /24: still known.
    assert_eq!(
        call_from(
            "127.0.0.2",
            &server,
            "POST",
            "/api/v1/access/decide",
            &device,
            decide
        )
        .await
        .0,
        200
    );
    let (st, v) = call_from(
        "127.0.1.1",
        &server,
        "POST",
        "/api/v1/access/decide",
        &device,
        decide,
    )
    .await;
    assert_eq!((st, v["code"].as_str()), (403, Some("key_suspended")));
    let (st, v) = call_from(
        "127.0.0.1",
        &server,
        "POST",
        "/api/v1/access/decide",
        &device,
        decide,
    )
    .await;
    assert_eq!((st, v["code"].as_str()), (403, Some("key_suspended")));
    let (st, _) = call_from(
        "127.0.0.1",
        &server,
        "POST",
        &format!("/api/v1/keys/{id}/reinstate"),
        &admin,
        "",
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(
        call_from(
            "127.0.1.1",
            &server,
            "POST",
            "/api/v1/access/decide",
            &device,
            decide
        )
        .await
        .0,
        200
    );
    // The decisions carry the key's site in the log.
    let (_, v) = call_from(
        "127.0.0.1",
        &server,
        "GET",
        "/api/v1/audit/entries?start=0&end=100",
        &admin,
        "",
    )
    .await;
    let decisions: Vec<Value> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str::<Value>(e["data"].as_str().unwrap()).unwrap())
        .filter(|e| e["action"] == "access.decide")
        .collect();
    assert_eq!(decisions.len(), 5);
    assert!(decisions
        .iter()
        .all(|e| e["detail"] == "by=card site=lobby"));
    drop(server);
    scratch.finish().await;
}
