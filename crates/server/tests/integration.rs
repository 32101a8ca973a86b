//! The HTTP API through the router (tower `oneshot`), on SQLite and PostgreSQL.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use consentry_core::{Core, Keyring};
use consentry_db::Db;
use consentry_testkit::{engine, photo, Scratch};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    key: Option<&str>,
    ct: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    if let Some(c) = ct {
        req = req.header("content-type", c);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A `multipart/form-data` body (boundary `XyZ`) of named parts.
fn form(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--XyZ--\r\n");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_on_both_backends() {
    let scratch = Scratch::new("server").await;
    for url in scratch.backends() {
        let db = Db::open(&url).await.unwrap();
        let (keys, _) = Keyring::open(&scratch.key_dir(&url.len().to_string())).unwrap();
        let core = Arc::new(Core::new(db, engine(), keys).await.unwrap());
        let (_, key) = core.bootstrap_tenant("Gate").await.unwrap();
        let (_, other_key) = core.bootstrap_tenant("Elsewhere").await.unwrap();
        let app = consentry_server::router(core);
        let k = Some(key.as_str());
        let json = Some("application/json");
        let jpeg = Some("image/jpeg");

        assert_eq!(
            call(&app, "GET", "/healthz", None, None, vec![]).await.0,
            StatusCode::OK
        );
        let (st, body) = call(&app, "POST", "/api/v1/subjects", None, None, vec![]).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
        let (st, body) = call(&app, "POST", "/api/v1/subjects", k, None, vec![]).await;
        assert_eq!(st, StatusCode::CREATED);
        let id = body["id"].as_str().unwrap().to_string();

        let faces = format!("/api/v1/subjects/{id}/faces?purpose=verification");
        let (st, body) = call(&app, "POST", &faces, k, jpeg, photo("obama.jpg")).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("consent_required"))
        );
        let consents = format!("/api/v1/subjects/{id}/consents");
        let (st, body) = call(&app, "POST", &consents, k, json, b"{not json".to_vec()).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request"))
        );
        let (st, body) = call(
            &app,
            "POST",
            &consents,
            k,
            json,
            br#"{"purpose":"verification","retention_days":90}"#.to_vec(),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        assert!(body["receipt"]["signature"].as_str().unwrap().len() == 128);

        let (st, body) = call(
            &app,
            "POST",
            &faces,
            k,
            Some("image/gif"),
            photo("obama.jpg"),
        )
        .await;
        assert_eq!(
            (st, body["code"].as_str()),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some("unsupported_format")
            )
        );
        let (st, body) = call(&app, "POST", &faces, k, jpeg, b"junk".to_vec()).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("not_an_image"))
        );
        let (st, body) = call(&app, "POST", &faces, k, jpeg, vec![0xFF; (10 << 20) + 1]).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
        );
        let (st, _) = call(&app, "POST", &faces, k, jpeg, photo("obama.jpg")).await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, view) = call(
            &app,
            "GET",
            &format!("/api/v1/subjects/{id}"),
            k,
            None,
            vec![],
        )
        .await;
        assert_eq!(
            (st, view["verification_templates"].as_i64()),
            (StatusCode::OK, Some(1)),
            "{view}"
        );
        assert!(
            !view.to_string().contains("sealed"),
            "no template bytes in the view"
        );

        let verify = format!("/api/v1/verify?subject={id}");
        let (st, body) = call(&app, "POST", &verify, k, jpeg, photo("obama2.jpg")).await;
        assert_eq!(
            (st, body["decision"].as_str()),
            (StatusCode::OK, Some("allow")),
            "{body}"
        );
        // No score for anyone: the allow is the whole answer.
        assert_eq!(
            body,
            serde_json::json!({ "decision": "allow", "checks": ["face"] })
        );
        let deny = serde_json::json!({ "decision": "deny", "checks": ["face"] });
        let (_, body) = call(&app, "POST", &verify, k, jpeg, photo("biden.jpg")).await;
        assert_eq!(body, deny);
        // An unknown subject, and another tenant's: the same whole body as a non-match.
        let unknown = "/api/v1/verify?subject=no-such-subject";
        let (_, body) = call(&app, "POST", unknown, k, jpeg, photo("obama2.jpg")).await;
        assert_eq!(body, deny);
        let (_, body) = call(
            &app,
            "POST",
            &verify,
            Some(&other_key),
            jpeg,
            photo("obama2.jpg"),
        )
        .await;
        assert_eq!(body, deny);
        // Clients that send image/jpg or application/octet-stream are served; the bytes decide.
        for ct in ["image/jpg", "application/octet-stream", "IMAGE/JPEG"] {
            let (st, body) = call(&app, "POST", &verify, k, Some(ct), photo("obama2.jpg")).await;
            assert_eq!(
                (st, &body["decision"]),
                (StatusCode::OK, &"allow".into()),
                "{ct}"
            );
        }
        // A multipart/form-data upload (what most clients and generated clients send): the
        // `image` part is the photo, other parts are ignored; without one, a clear refusal.
        let multipart = Some("multipart/form-data; boundary=XyZ");
        let probe = photo("obama2.jpg");
        let stranger = photo("biden.jpg");
        let (st, body) = call(
            &app,
            "POST",
            &verify,
            k,
            multipart,
            form(&[("note", b"hi"), ("image", &probe)]),
        )
        .await;
        assert_eq!(
            (st, &body["decision"]),
            (StatusCode::OK, &"allow".into()),
            "{body}"
        );
        let (st, body) = call(
            &app,
            "POST",
            &verify,
            k,
            multipart,
            form(&[("image", &stranger)]),
        )
        .await;
        assert_eq!(
            (st, &body["decision"]),
            (StatusCode::OK, &"deny".into()),
            "{body}"
        );
        let (st, body) = call(
            &app,
            "POST",
            &verify,
            k,
            multipart,
            form(&[("photo", &probe)]),
        )
        .await;
        assert_eq!(
            (st, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{body}"
        );
        assert!(
            body["message"].as_str().unwrap_or("").contains("`image`"),
            "{body}"
        );
        let (st, body) = call(
            &app,
            "POST",
            &verify,
            k,
            Some("multipart/form-data"),
            probe.clone(),
        )
        .await;
        assert_eq!(
            (st, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "no boundary: {body}"
        );
        let (st, body) = call(
            &app,
            "POST",
            &verify,
            k,
            Some("application/octet-stream"),
            b"GIF89a not a photo".to_vec(),
        )
        .await;
        assert_eq!(
            (st, body["code"].as_str()),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some("unsupported_format")
            ),
            "{body}"
        );
        let (st, body) = call(
            &app,
            "POST",
            &verify,
            k,
            Some("text/plain"),
            photo("obama2.jpg"),
        )
        .await;
        assert_eq!(
            (st, body["code"].as_str()),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Some("unsupported_format")
            )
        );
        let subject = format!("/api/v1/subjects/{id}");
        assert_eq!(
            call(&app, "DELETE", &subject, Some(&other_key), None, vec![])
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(&app, "DELETE", &subject, k, None, vec![]).await.0,
            StatusCode::NO_CONTENT
        );
        let (_, body) = call(&app, "POST", &verify, k, jpeg, photo("obama2.jpg")).await;
        assert_eq!(body["decision"], "deny");
        assert_eq!(
            call(&app, "GET", "/nope", k, None, vec![]).await.0,
            StatusCode::NOT_FOUND
        );
    }
    scratch.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id() {
    let scratch = Scratch::new("server_reqid").await;
    let db = Db::open(&scratch.sqlite_url("r")).await.unwrap();
    let (keys, _) = Keyring::open(&scratch.key_dir("r")).unwrap();
    let app = consentry_server::router(Arc::new(Core::new(db, engine(), keys).await.unwrap()));
    let id_of = |given: Option<&str>| {
        let app = app.clone();
        let given = given.map(str::to_string);
        async move {
            let mut req = Request::builder().method("POST").uri("/api/v1/subjects");
            if let Some(g) = given {
                req = req.header("x-request-id", g);
            }
            let resp = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
            // An error response (no key) carries it too.
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
            resp.headers()
                .get("x-request-id")
                .map(|v| v.to_str().unwrap().to_string())
        }
    };
    // Generated: 32 hex digits, different each time.
    let (a, b) = (id_of(None).await.unwrap(), id_of(None).await.unwrap());
    assert_eq!(a.len(), 32);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
    // A gateway's id carries through; one that is not a plain token is replaced.
    assert_eq!(id_of(Some("gw-42.a:b_c")).await.unwrap(), "gw-42.a:b_c");
    let replaced = id_of(Some("a b<script>")).await.unwrap();
    assert_eq!(replaced.len(), 32);
    let long = "x".repeat(65);
    assert_ne!(id_of(Some(&long)).await.unwrap(), long);
    // An unknown endpoint too.
    let resp = app
        .clone()
        .oneshot(Request::get("/no/such/thing").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.headers()["x-request-id"].len(), 32);
    // The counters label requests by route template, and the unknown one as unmatched.
    let resp = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains(
            r#"consentry_requests_total{method="POST",route="/api/v1/subjects",status="401"} 5"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="unmatched",status="404"} 1"#),
        "{text}"
    );
    scratch.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_rejections_come_back_as_catalogue_errors() {
    let scratch = Scratch::new("server_rejections").await;
    let db = Db::open(&scratch.sqlite_url("j")).await.unwrap();
    let (keys, _) = Keyring::open(&scratch.key_dir("j")).unwrap();
    let core = Arc::new(Core::new(db, engine(), keys).await.unwrap());
    let (_, key) = core.bootstrap_tenant("Rejections").await.unwrap();
    let app = consentry_server::router(core);
    let k = Some(key.as_str());
    let jpeg = Some("image/jpeg");
    // A method the route does not take: 405 with the catalogue code, not an empty body.
    let (status, body) = call(&app, "GET", "/api/v1/verify", k, None, vec![]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "method_not_allowed", "{body}");
    // A query string that does not parse (a repeated field).
    let uri = "/api/v1/verify?subject=a&subject=b";
    let (status, body) = call(&app, "POST", uri, k, jpeg, photo("obama.jpg")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_request", "{body}");
    assert_eq!(body["message"], "malformed query string");
    // A path segment that is not UTF-8 once decoded.
    let (status, body) = call(&app, "GET", "/api/v1/subjects/%FF%FE", k, None, vec![]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_request", "{body}");
    // An unknown endpoint.
    let (status, body) = call(&app, "GET", "/api/v2/nothing", k, None, vec![]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found", "{body}");
    // The metrics' method label is bounded: a made-up method counts as "other".
    call(&app, "BREW", "/api/v1/subjects", k, None, vec![]).await;
    let resp = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(!text.contains("BREW"), "{text}");
    assert!(
        text.contains(r#"method="other",route="/api/v1/subjects",status="405"} 1"#),
        "{text}"
    );
    scratch.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_time_limit_is_answered_with_a_catalogue_code() {
    let scratch = Scratch::new("server_timeout").await;
    let db = Db::open(&scratch.sqlite_url("t")).await.unwrap();
    let (keys, _) = Keyring::open(&scratch.key_dir("t")).unwrap();
    let core = Arc::new(Core::new(db, engine(), keys).await.unwrap());
    let (_, key) = core.bootstrap_tenant("Slow").await.unwrap();
    // One millisecond: no face pipeline finishes in time.
    let app = consentry_server::router_with_timeout(core, std::time::Duration::from_millis(1));
    let (st, body) = call(
        &app,
        "POST",
        "/api/v1/identify",
        Some(&key),
        Some("image/jpeg"),
        photo("obama2.jpg"),
    )
    .await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "request_timeout");
    scratch.finish().await;
}

/// A request's work runs on when its caller stops waiting, but an upload that is still
/// arriving at the time limit fails to read, so a caller trickling bytes cannot keep it alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_ends_at_the_time_limit() {
    use futures_util::StreamExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    let scratch = Scratch::new("server_stalled").await;
    let (core, _db) = core_at(&scratch, &scratch.sqlite_url("s")).await;
    let core = Arc::new(core);
    let (_, key) = core.bootstrap_tenant("Trickle").await.unwrap();
    let app = consentry_server::router_with_timeout(core, std::time::Duration::from_millis(200));
    // A body that sends a few bytes, then nothing more, ever; `dropped` tells when the server
    // let go of it.
    struct Dropped(Arc<AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = Dropped(dropped.clone());
    let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(
        axum::body::Bytes::from_static(b"\xff\xd8\xff"),
    )])
    .chain(futures_util::stream::pending())
    .map(move |chunk| {
        let _held = &guard;
        chunk
    });
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/identify")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "image/jpeg")
        .body(Body::from_stream(chunks))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["code"], "request_timeout");
    // The work behind it ends too: the upload fails to read and the body is let go.
    let start = std::time::Instant::now();
    while !dropped.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the stalled upload was never let go"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    scratch.finish().await;
}

async fn call_h(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A core on a fresh database of `url`'s backend, with a key file of its own in `scratch`.
async fn core_at(scratch: &Scratch, url: &str) -> (Core, Db) {
    let db = Db::open(url).await.unwrap();
    let key_file = scratch.key_dir(&url.starts_with("sqlite").to_string());
    let (keys, _) = Keyring::open(&key_file).unwrap();
    (Core::new(db.clone(), engine(), keys).await.unwrap(), db)
}

/// docs/security.md's role × endpoint table, walked: every endpoint, every role, with the own
/// tenant's records and with a foreign tenant's key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_allows_exactly_the_roles_in_the_table() {
    use consentry_core::{KeyRequest, Purpose, Role};
    let scratch = Scratch::new("server_roles").await;
    for url in scratch.backends() {
        let (mut core, db) = core_at(&scratch, &url).await;
        // The walk makes a fresh record for every call, over a thousand actions of the admin
        // key in a minute: the many-records and burst rules would stop it partway (they have
        // tests of their own).
        core.set_abuse_rules(consentry_core::AbuseRules {
            distinct_reads_floor: 1_000_000,
            burst_floor: 1_000_000,
            ..consentry_core::AbuseRules::default()
        });
        core.set_voice(consentry_testkit::voice_engine());
        let core = Arc::new(core);
        let (tenant, admin_key) = core.bootstrap_tenant("Roles").await.unwrap();
        let (_, foreign_key) = core.bootstrap_tenant("Foreign").await.unwrap();
        let admin = core.authenticate(&admin_key).await.unwrap();
        // Verification by face or voice in both tenants, so both verify endpoints decide.
        for key in [&admin_key, &foreign_key] {
            let p = core.authenticate(key).await.unwrap();
            core.set_modality_policy(
                &p,
                Purpose::Verification,
                consentry_core::Modality::FaceOrVoice,
            )
            .await
            .unwrap();
        }
        let mut role_keys = vec![("admin", admin_key.clone())];
        for (name, role) in [
            ("operator", Role::Operator),
            ("device", Role::Device),
            ("auditor", Role::Auditor),
        ] {
            // The device serves a site, so it can check passes in there.
            let req = KeyRequest {
                site: (role == Role::Device).then(|| "site-1".to_string()),
                ..KeyRequest::role(role)
            };
            let (_, k) = core.issue_key(&admin, &req).await.unwrap();
            role_keys.push((name, k));
        }
        let app = consentry_server::router(core.clone());

        // (method, path, content type, body, roles allowed). {s} a fresh subject with an
        // access consent (and a pass consent), {c} its access consent, {k} a fresh device key,
        // {p} a fresh pass of {s} for site-1 and {P} its text, {t} the tenant.
        let pin = std::sync::atomic::AtomicU32::new(100_000);
        type Spec = (
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            &'static [&'static str],
        );
        const MANAGE: &[&str] = &["admin", "operator"];
        const DECIDE: &[&str] = &["admin", "operator", "device"];
        const ADMIN: &[&str] = &["admin"];
        const AUDIT: &[&str] = &["admin", "auditor"];
        const ALL: &[&str] = &["admin", "operator", "device", "auditor"];
        let table: &[Spec] = &[
            ("POST", "/api/v1/subjects", "", "", MANAGE),
            ("GET", "/api/v1/subjects/{s}", "", "", MANAGE),
            ("DELETE", "/api/v1/subjects/{s}", "", "", MANAGE),
            (
                "POST",
                "/api/v1/subjects/{s}/consents",
                "application/json",
                r#"{"purpose":"verification","retention_days":30}"#,
                MANAGE,
            ),
            (
                "DELETE",
                "/api/v1/subjects/{s}/consents/{c}",
                "",
                "",
                MANAGE,
            ),
            (
                "POST",
                "/api/v1/subjects/{s}/faces?purpose=access",
                "image/jpeg",
                "obama.jpg",
                MANAGE,
            ),
            (
                "POST",
                "/api/v1/subjects/{s}/voices?purpose=access",
                "audio/flac",
                "1688-142285-0004.flac",
                MANAGE,
            ),
            (
                "POST",
                "/api/v1/verify/voice?subject={s}",
                "audio/flac",
                "1688-142285-0005.flac",
                DECIDE,
            ),
            (
                "PUT",
                "/api/v1/modality/policy",
                "application/json",
                r#"{"purpose":"verification","modality":"face_or_voice"}"#,
                ADMIN,
            ),
            ("GET", "/api/v1/modality/policy?purpose=access", "", "", ALL),
            (
                "POST",
                "/api/v1/subjects/{s}/credentials",
                "application/json",
                "PIN",
                MANAGE,
            ),
            (
                "GET",
                "/api/v1/subjects/{s}/accesses",
                "",
                "",
                &["admin", "operator", "auditor"],
            ),
            (
                "POST",
                "/api/v1/verify?subject={s}",
                "image/jpeg",
                "obama2.jpg",
                DECIDE,
            ),
            (
                "POST",
                "/api/v1/identify",
                "image/jpeg",
                "obama2.jpg",
                DECIDE,
            ),
            (
                "POST",
                "/api/v1/access/decide",
                "application/json",
                r#"{"card":"no-such-card"}"#,
                DECIDE,
            ),
            ("GET", "/api/v1/tenant/public-keys", "", "", ALL),
            (
                "POST",
                "/api/v1/liveness/challenges",
                "application/json",
                r#"{"subject":"{s}"}"#,
                DECIDE,
            ),
            (
                "PUT",
                "/api/v1/liveness/policy",
                "application/json",
                r#"{"purpose":"verification","required":false}"#,
                ADMIN,
            ),
            ("GET", "/api/v1/audit/checkpoint", "", "", AUDIT),
            ("GET", "/api/v1/audit/entries?start=0&end=2", "", "", AUDIT),
            (
                "GET",
                "/api/v1/audit/proof/inclusion?index=0&tree_size=2",
                "",
                "",
                AUDIT,
            ),
            (
                "GET",
                "/api/v1/audit/proof/consistency?first=1&second=2",
                "",
                "",
                AUDIT,
            ),
            (
                "POST",
                "/api/v1/keys",
                "application/json",
                r#"{"role":"device","site":"gate-1"}"#,
                ADMIN,
            ),
            ("GET", "/api/v1/keys", "", "", ADMIN),
            ("DELETE", "/api/v1/keys/{k}", "", "", ADMIN),
            ("POST", "/api/v1/keys/{k}/rotate", "", "", ADMIN),
            ("POST", "/api/v1/keys/{k}/reinstate", "", "", ADMIN),
            (
                "POST",
                "/api/v1/links",
                "application/json",
                r#"{"action":"subject.read","subject":"{s}","purpose":"case 1","minutes":5}"#,
                MANAGE,
            ),
            ("POST", "/api/v1/subjects/{s}/token", "", "", ADMIN),
            (
                "POST",
                "/api/v1/subjects/{s}/passes",
                "application/json",
                r#"{"access":"site-1"}"#,
                MANAGE,
            ),
            (
                "GET",
                "/api/v1/subjects/{s}/passes/{p}/qr.svg",
                "",
                "",
                MANAGE,
            ),
            (
                "GET",
                "/api/v1/subjects/{s}/passes/{p}/qr.png",
                "",
                "",
                MANAGE,
            ),
            (
                "POST",
                "/api/v1/subjects/{s}/passes/{p}/revoke",
                "",
                "",
                MANAGE,
            ),
            ("POST", "/api/v1/passes/rotate", "", "", ADMIN),
            ("GET", "/api/v1/passes/trust?tenant={t}", "", "", ALL),
            ("GET", "/api/v1/passes/revocations?tenant={t}", "", "", ALL),
            (
                "POST",
                "/api/v1/checkins",
                "application/json",
                r#"{"pass":"{P}"}"#,
                &["device"],
            ),
            ("POST", "/api/v1/quality", "image/jpeg", "obama.jpg", DECIDE),
        ];
        let mut calls = 0;
        for &(method, path, ct, body, allowed) in table {
            for (role, key) in role_keys
                .iter()
                .map(|(r, k)| (*r, k.as_str()))
                .chain([("foreign", foreign_key.as_str())])
            {
                let s = core.create_subject(&admin).await.unwrap();
                let receipt = core
                    .grant_consent(&admin, &s, Purpose::Access, 30)
                    .await
                    .unwrap();
                core.grant_consent(&admin, &s, Purpose::Pass, 30)
                    .await
                    .unwrap();
                let pass = core
                    .issue_pass(&admin, &s, "site-1", None, None, consentry_pass::Alg::EdDSA)
                    .await
                    .unwrap();
                let (k, _) = core
                    .issue_key(&admin, &KeyRequest::role(Role::Device))
                    .await
                    .unwrap();
                if path.ends_with("reinstate") {
                    sqlx::query("UPDATE api_keys SET suspended_at = 1 WHERE id = $1")
                        .bind(&k)
                        .execute(db.pool())
                        .await
                        .unwrap();
                }
                let uri = path
                    .replace("{s}", &s)
                    .replace("{c}", &receipt.consent_id)
                    .replace("{k}", &k)
                    .replace("{p}", &pass.pass_id)
                    .replace("{t}", &tenant);
                let bytes = match body {
                    "PIN" => {
                        let n = pin.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        format!(r#"{{"pin":"{n}"}}"#).into_bytes()
                    }
                    b if b.ends_with(".jpg") => photo(b),
                    b if b.ends_with(".flac") => consentry_testkit::voice_clip(b),
                    b => b.replace("{s}", &s).replace("{P}", &pass.pass).into_bytes(),
                };
                let auth = format!("Bearer {key}");
                let mut headers = vec![
                    ("authorization", auth.as_str()),
                    ("x-consentry-purpose", "role walk"),
                ];
                if !ct.is_empty() {
                    headers.push(("content-type", ct));
                }
                let (st, v) = call_h(&app, method, &uri, &headers, bytes).await;
                calls += 1;
                let what = format!("{role} {method} {path}: {st} {v}");
                if role == "foreign" {
                    // Another tenant's admin: the records are not there for it (or, for a
                    // tenant-wide endpoint, it acts on its own tenant; a public one names the
                    // tenant it reads).
                    let names_a_record =
                        path.replace("{t}", "").contains('{') || body.contains("{s}");
                    if !allowed.contains(&"admin") {
                        assert_eq!(
                            (st, v["code"].as_str()),
                            (StatusCode::FORBIDDEN, Some("forbidden")),
                            "{what}"
                        );
                    } else if names_a_record && !path.starts_with("/api/v1/verify") {
                        assert_eq!(
                            (st, v["code"].as_str()),
                            (StatusCode::NOT_FOUND, Some("not_found")),
                            "{what}"
                        );
                    } else {
                        assert!(st.is_success(), "{what}");
                    }
                } else if allowed.contains(&role) {
                    assert!(st.is_success(), "{what}");
                } else {
                    assert_eq!(
                        (st, v["code"].as_str()),
                        (StatusCode::FORBIDDEN, Some("forbidden")),
                        "{what}"
                    );
                }
            }
        }
        assert_eq!(calls, table.len() * 5);
    }
    scratch.finish().await;
}

/// Keys: issued with a role, expiry and site, listed without secrets, revoked, rotated,
/// expired, suspended and reinstated, each with its own code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_life_cycle_over_http() {
    let scratch = Scratch::new("server_keys").await;
    for url in scratch.backends() {
        let (core, db) = core_at(&scratch, &url).await;
        let core = Arc::new(core);
        let (_, admin) = core.bootstrap_tenant("Keys").await.unwrap();
        let app = consentry_server::router(core.clone());
        let auth = format!("Bearer {admin}");
        let json = [
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ];
        let a = [("authorization", auth.as_str())];

        let (st, v) = call_h(
            &app,
            "POST",
            "/api/v1/keys",
            &json,
            br#"{"role":"device","expires_in_days":30,"site":"north-gate"}"#.to_vec(),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let (dev_id, dev_key) = (
            v["id"].as_str().unwrap().to_string(),
            v["key"].as_str().unwrap().to_string(),
        );
        for bad in [
            r#"{"role":"root"}"#,
            r#"{"role":"device","expires_in_days":0}"#,
            r#"{"role":"operator","site":"x"}"#,
            r#"{"role":"device","site":"a b"}"#,
        ] {
            let (st, v) =
                call_h(&app, "POST", "/api/v1/keys", &json, bad.as_bytes().to_vec()).await;
            assert_eq!(
                (st, v["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_request")),
                "{bad}"
            );
        }
        let (st, v) = call_h(&app, "GET", "/api/v1/keys", &a, vec![]).await;
        assert_eq!(st, StatusCode::OK);
        let listed = v["keys"].as_array().unwrap();
        assert_eq!(listed.len(), 2);
        let dev = listed.iter().find(|k| k["id"] == dev_id.as_str()).unwrap();
        assert_eq!(
            (
                dev["role"].as_str(),
                dev["status"].as_str(),
                dev["site"].as_str()
            ),
            (Some("device"), Some("active"), Some("north-gate"))
        );
        assert!(
            dev["expires_at"].as_i64().unwrap() > dev["created_at"].as_i64().unwrap() + 29 * 86_400
        );
        assert!(
            !v.to_string().contains(&dev_key[3..]),
            "a listing shows no secret"
        );

        let dev_auth = format!("Bearer {dev_key}");
        let d = [
            ("authorization", dev_auth.as_str()),
            ("content-type", "application/json"),
        ];
        let decide = br#"{"card":"none"}"#.to_vec();
        assert_eq!(
            call_h(&app, "POST", "/api/v1/access/decide", &d, decide.clone())
                .await
                .0,
            StatusCode::OK
        );

        // Suspended (as the abuse rules do), then reinstated by the admin.
        sqlx::query(
            "UPDATE api_keys SET suspended_at = 1, suspended_reason = 'test' WHERE id = $1",
        )
        .bind(&dev_id)
        .execute(db.pool())
        .await
        .unwrap();
        let (st, v) = call_h(&app, "POST", "/api/v1/access/decide", &d, decide.clone()).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("key_suspended"))
        );
        let reinstate = format!("/api/v1/keys/{dev_id}/reinstate");
        assert_eq!(
            call_h(&app, "POST", &reinstate, &a, vec![]).await.0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            call_h(&app, "POST", &reinstate, &a, vec![]).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call_h(&app, "POST", "/api/v1/access/decide", &d, decide.clone())
                .await
                .0,
            StatusCode::OK
        );

        // Rotated: the old key is revoked, the new one has the same role and site.
        let (st, v) = call_h(
            &app,
            "POST",
            &format!("/api/v1/keys/{dev_id}/rotate"),
            &a,
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::CREATED);
        let (new_id, new_key) = (
            v["id"].as_str().unwrap().to_string(),
            v["key"].as_str().unwrap().to_string(),
        );
        let (st, v) = call_h(&app, "POST", "/api/v1/access/decide", &d, decide.clone()).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("key_revoked"))
        );
        let new_auth = format!("Bearer {new_key}");
        let n = [
            ("authorization", new_auth.as_str()),
            ("content-type", "application/json"),
        ];
        assert_eq!(
            call_h(&app, "POST", "/api/v1/access/decide", &n, decide.clone())
                .await
                .0,
            StatusCode::OK
        );
        let (_, v) = call_h(&app, "GET", "/api/v1/keys", &a, vec![]).await;
        let rotated = v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == new_id.as_str())
            .unwrap()
            .clone();
        assert_eq!(
            (rotated["site"].as_str(), rotated["role"].as_str()),
            (Some("north-gate"), Some("device"))
        );

        // Expired.
        sqlx::query("UPDATE api_keys SET expires_at = 1 WHERE id = $1")
            .bind(&new_id)
            .execute(db.pool())
            .await
            .unwrap();
        let (st, v) = call_h(&app, "POST", "/api/v1/access/decide", &n, decide.clone()).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("key_expired"))
        );

        // Revoked; revoking again changes nothing (204, one audit entry); a key cannot revoke
        // itself; an unknown key is not_found.
        let (st, v) = call_h(
            &app,
            "POST",
            "/api/v1/keys",
            &json,
            br#"{"role":"auditor"}"#.to_vec(),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED);
        let aud_id = v["id"].as_str().unwrap().to_string();
        assert_eq!(
            call_h(
                &app,
                "DELETE",
                &format!("/api/v1/keys/{aud_id}"),
                &a,
                vec![]
            )
            .await
            .0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            call_h(
                &app,
                "DELETE",
                &format!("/api/v1/keys/{aud_id}"),
                &a,
                vec![]
            )
            .await
            .0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            call_h(&app, "DELETE", "/api/v1/keys/0000", &a, vec![])
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        let me = core.authenticate(&admin).await.unwrap().key;
        let (st, v) = call_h(&app, "DELETE", &format!("/api/v1/keys/{me}"), &a, vec![]).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request"))
        );

        // Each change is in the log, attributed to the admin.
        let p = core.authenticate(&admin).await.unwrap();
        let n = core.audit_entries(&p, 0, 100).await.unwrap();
        let actions: Vec<String> = n
            .iter()
            .map(|(_, d)| {
                serde_json::from_str::<Value>(d).unwrap()["action"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .filter(|a| a.starts_with("key."))
            .collect();
        assert_eq!(
            actions,
            [
                "key.create",
                "key.create",
                "key.reinstate",
                "key.rotate",
                "key.create",
                "key.revoke"
            ]
        );
        db.pool().close().await;
    }
    scratch.finish().await;
}

/// The "sold login": an operator key that reads a record now and then starts reading many
/// distinct people's records. It is suspended within 50 requests, every request before the
/// suspension is in the log, every one after it gets `key_suspended`, and the signed alert
/// reaches the webhook. Only an admin reinstates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sold_operator_login_is_suspended_logged_and_alerted() {
    use consentry_core::{KeyRequest, Role};
    use consentry_server::alerts::{deliver, signature, Webhook};

    // The receiver: records each delivery; fails the first one, to exercise the retry.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, String, Vec<u8>)>();
    let seen = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let receiver = Router::new().route(
        "/alerts",
        axum::routing::post({
            let seen = seen.clone();
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let tx = tx.clone();
                let seen = seen.clone();
                async move {
                    if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let h = |n: &str| {
                        headers
                            .get(n)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    let _ = tx.send((
                        h("x-consentry-timestamp"),
                        h("x-consentry-signature"),
                        body.to_vec(),
                    ));
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let scratch = Scratch::new("server_abuse").await;
    for url in scratch.backends() {
        let (core, db) = core_at(&scratch, &url).await;
        let core = Arc::new(core);
        let secret = b"a webhook secret of some length".to_vec();
        let hook = Webhook {
            target: consentry_server::client::Target::parse(&format!("http://{hook_addr}/alerts"))
                .unwrap(),
            secret: zeroize::Zeroizing::new(secret.clone()),
        };
        tokio::spawn(deliver(
            hook,
            core.subscribe_alerts(),
            std::time::Duration::from_millis(20),
        ));
        let (_, admin_key) = core.bootstrap_tenant("Sold").await.unwrap();
        let admin = core.authenticate(&admin_key).await.unwrap();
        let (op_id, op_key) = core
            .issue_key(&admin, &KeyRequest::role(Role::Operator))
            .await
            .unwrap();
        let mut people = Vec::new();
        for _ in 0..60 {
            people.push(core.create_subject(&admin).await.unwrap());
        }
        let app = consentry_server::router(core.clone());
        let auth = format!("Bearer {op_key}");
        let h = [
            ("authorization", auth.as_str()),
            ("x-consentry-purpose", "routine check"),
        ];

        let mut served = 0;
        let mut suspended_at = None;
        for (i, person) in people.iter().enumerate().take(50) {
            let (st, v) = call_h(
                &app,
                "GET",
                &format!("/api/v1/subjects/{person}"),
                &h,
                vec![],
            )
            .await;
            if st == StatusCode::OK {
                assert!(
                    suspended_at.is_none(),
                    "a request after the suspension was served"
                );
                served += 1;
            } else {
                assert_eq!(
                    (st, v["code"].as_str()),
                    (StatusCode::FORBIDDEN, Some("key_suspended")),
                    "{v}"
                );
                suspended_at.get_or_insert(i);
            }
        }
        let first_refused = suspended_at.expect("suspended within 50 requests");
        assert_eq!(
            first_refused, 20,
            "the floor is 20 distinct records an hour"
        );

        // Every served request is in the log, then the suspension by the rules.
        let auditor_p = core.authenticate(&admin_key).await.unwrap();
        let entries = core.audit_entries(&auditor_p, 0, 1000).await.unwrap();
        let parsed: Vec<Value> = entries
            .iter()
            .map(|(_, d)| serde_json::from_str(d).unwrap())
            .collect();
        let reads = parsed
            .iter()
            .filter(|e| e["action"] == "subject.read" && e["actor"]["key"] == op_id.as_str())
            .count();
        assert_eq!(reads, served);
        let last = parsed.last().unwrap();
        assert_eq!(
            (last["action"].as_str(), last["target"].as_str()),
            (Some("key.suspend"), Some(op_id.as_str()))
        );
        assert_eq!(last["actor"]["key"], "abuse-rules");
        assert!(last["detail"]
            .as_str()
            .unwrap()
            .contains("rule=many_subjects_read"));

        // The alert, after one failed delivery, signed with the shared secret.
        let (ts, sig, body) = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("the alert arrives")
            .unwrap();
        assert_eq!(sig, signature(&secret, &ts, &body));
        let alert: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (alert["rule"].as_str(), alert["key"].as_str()),
            (Some("many_subjects_read"), Some(op_id.as_str()))
        );
        assert_eq!(
            alert["audit_index"].as_u64(),
            Some(entries.len() as u64 - 1)
        );

        // The operator cannot lift it; an admin can, and the key works again.
        let (st, v) = call_h(
            &app,
            "POST",
            &format!("/api/v1/keys/{op_id}/reinstate"),
            &h,
            vec![],
        )
        .await;
        assert_eq!(v["code"], "key_suspended", "{st}");
        let ah = format!("Bearer {admin_key}");
        let (st, _) = call_h(
            &app,
            "POST",
            &format!("/api/v1/keys/{op_id}/reinstate"),
            &[("authorization", ah.as_str())],
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _) = call_h(
            &app,
            "GET",
            &format!("/api/v1/subjects/{}", people[55]),
            &h,
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::OK);
        db.pool().close().await;
    }
    scratch.finish().await;
}

/// Scoped links work for the minting key, for their action, until they expire; other uses are
/// refused and logged. The person reads their own accesses with their token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_scoped_and_short_lived_and_the_person_reads_their_accesses() {
    use consentry_core::{KeyRequest, Purpose, Role};
    let scratch = Scratch::new("server_links").await;
    for url in scratch.backends() {
        let (core, db) = core_at(&scratch, &url).await;
        let core = Arc::new(core);
        let (_, admin_key) = core.bootstrap_tenant("Links").await.unwrap();
        let admin = core.authenticate(&admin_key).await.unwrap();
        let (_, op1) = core
            .issue_key(&admin, &KeyRequest::role(Role::Operator))
            .await
            .unwrap();
        let (_, op2) = core
            .issue_key(&admin, &KeyRequest::role(Role::Operator))
            .await
            .unwrap();
        let person = core.create_subject(&admin).await.unwrap();
        core.grant_consent(&admin, &person, Purpose::Verification, 30)
            .await
            .unwrap();
        let app = consentry_server::router(core.clone());
        let a1 = format!("Bearer {op1}");
        let a2 = format!("Bearer {op2}");
        let j1 = [
            ("authorization", a1.as_str()),
            ("content-type", "application/json"),
        ];

        // The first enrolment gives the person a token; the second does not.
        let faces = format!("/api/v1/subjects/{person}/faces?purpose=verification");
        let jpeg = [
            ("authorization", a1.as_str()),
            ("content-type", "image/jpeg"),
        ];
        let (st, v) = call_h(&app, "POST", &faces, &jpeg, photo("obama.jpg")).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let person_token = v["subject_token"].as_str().unwrap().to_string();
        assert!(person_token.starts_with("st_"));
        let (_, v) = call_h(&app, "POST", &faces, &jpeg, photo("obama2.jpg")).await;
        assert!(v["subject_token"].is_null());

        let body = format!(
            r#"{{"action":"subject.read","subject":"{person}","purpose":"complaint 31","minutes":10}}"#
        );
        let (st, v) = call_h(&app, "POST", "/api/v1/links", &j1, body.into_bytes()).await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
        let (link_id, token) = (
            v["id"].as_str().unwrap().to_string(),
            v["token"].as_str().unwrap().to_string(),
        );
        let use_path = format!("/api/v1/links/{token}");
        // The minting operator reads the record through it, with its purpose.
        let (st, v) = call_h(
            &app,
            "GET",
            &use_path,
            &[("authorization", a1.as_str())],
            vec![],
        )
        .await;
        assert_eq!(
            (st, v["id"].as_str()),
            (StatusCode::OK, Some(person.as_str())),
            "{v}"
        );
        // Another operator of the same tenant may not use it.
        let (st, v) = call_h(
            &app,
            "GET",
            &use_path,
            &[("authorization", a2.as_str())],
            vec![],
        )
        .await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        // Expired: refused, with its own code.
        sqlx::query("UPDATE links SET expires_at = 1 WHERE id = $1")
            .bind(&link_id)
            .execute(db.pool())
            .await
            .unwrap();
        let (st, v) = call_h(
            &app,
            "GET",
            &use_path,
            &[("authorization", a1.as_str())],
            vec![],
        )
        .await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::GONE, Some("link_expired"))
        );
        // Not a link: not found.
        let (st, _) = call_h(
            &app,
            "GET",
            "/api/v1/links/cl_nothing",
            &[("authorization", a1.as_str())],
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::NOT_FOUND);
        for bad in [
            format!(
                r#"{{"action":"subject.delete","subject":"{person}","purpose":"x","minutes":5}}"#
            ),
            format!(
                r#"{{"action":"subject.read","subject":"{person}","purpose":"x","minutes":61}}"#
            ),
            format!(r#"{{"action":"subject.read","subject":"{person}","purpose":"","minutes":5}}"#),
        ] {
            let (st, v) = call_h(&app, "POST", "/api/v1/links", &j1, bad.into_bytes()).await;
            assert_eq!(
                (st, v["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some("invalid_request")),
                "{v}"
            );
        }

        // The person's view, with their own token: the read through the link and its purpose,
        // the refused uses, the enrolments.
        let pt = format!("Bearer {person_token}");
        let accesses = format!("/api/v1/subjects/{person}/accesses");
        let (st, v) = call_h(
            &app,
            "GET",
            &accesses,
            &[("authorization", pt.as_str())],
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let seen: Vec<(String, String, String)> = v["accesses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["action"].as_str().unwrap().into(),
                    a["outcome"].as_str().unwrap().into(),
                    a["purpose"].as_str().unwrap_or("").into(),
                )
            })
            .collect();
        let expect = |a: &str, o: &str, p: &str| (a.to_string(), o.to_string(), p.to_string());
        assert_eq!(
            seen[..4],
            [
                expect("link.use", "expired", ""),
                expect("link.use", "wrong_key", ""),
                expect("subject.read", "ok", "complaint 31"),
                expect("link.mint", "ok", "complaint 31"),
            ]
        );
        // The token reads this person's accesses only.
        let other = core.create_subject(&admin).await.unwrap();
        let (st, v) = call_h(
            &app,
            "GET",
            &format!("/api/v1/subjects/{other}/accesses"),
            &[("authorization", pt.as_str())],
            vec![],
        )
        .await;
        assert_eq!(
            (st, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        // …and nothing else.
        let (st, _) = call_h(
            &app,
            "GET",
            &format!("/api/v1/subjects/{person}"),
            &[("authorization", pt.as_str())],
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        // An admin's new token replaces it.
        let aa = format!("Bearer {admin_key}");
        let (st, v) = call_h(
            &app,
            "POST",
            &format!("/api/v1/subjects/{person}/token"),
            &[("authorization", aa.as_str())],
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::CREATED);
        assert_ne!(v["token"].as_str(), Some(person_token.as_str()));
        let (st, _) = call_h(
            &app,
            "GET",
            &accesses,
            &[("authorization", pt.as_str())],
            vec![],
        )
        .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        db.pool().close().await;
    }
    scratch.finish().await;
}

/// Liveness over HTTP: the admin sets the policy, a device asks for a challenge, answers it with
/// a burst of base64 frames, and verifies with the token; without one it is refused, and the
/// decision says which checks it rests on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_challenge_answer_and_token_over_http() {
    use base64::Engine;
    use consentry_core::{LivenessModels, Purpose, Role};
    use consentry_face::challenge::Action;
    use consentry_face::pad::{ChallengeModels, PadProfile, PassiveDetector};
    let scratch = Scratch::new("server_liveness").await;
    let url = scratch.sqlite_url("l");
    let (mut core, _db) = core_at(&scratch, &url).await;
    let assets = consentry_face::runtime::Assets::locate();
    let models = LivenessModels {
        passive: PassiveDetector::load(&assets, &PadProfile::Faceplugin, 1).unwrap(),
        challenge: ChallengeModels::load(&assets, 1).unwrap(),
    };
    core.set_liveness(models, vec![Action::Blink]);
    let core = Arc::new(core);
    let (_, admin_key) = core.bootstrap_tenant("Counter").await.unwrap();
    let admin = core.authenticate(&admin_key).await.unwrap();
    let device_key = core.create_api_key(&admin, Role::Device).await.unwrap();
    let s = core.create_subject(&admin).await.unwrap();
    core.grant_consent(&admin, &s, Purpose::Verification, 30)
        .await
        .unwrap();
    core.enrol_face(&admin, &s, Purpose::Verification, photo("obama.jpg"))
        .await
        .unwrap();
    let app = consentry_server::router(core.clone());
    let json = Some("application/json");

    let policy = r#"{"purpose":"verification","required":true}"#;
    let (st, v) = call(
        &app,
        "PUT",
        "/api/v1/liveness/policy",
        Some(&device_key),
        json,
        policy.into(),
    )
    .await;
    assert_eq!(
        (st, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{v}"
    );
    let (st, _) = call(
        &app,
        "PUT",
        "/api/v1/liveness/policy",
        Some(&admin_key),
        json,
        policy.into(),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);

    let verify = format!("/api/v1/verify?subject={s}");
    let (st, v) = call(
        &app,
        "POST",
        &verify,
        Some(&device_key),
        Some("image/jpeg"),
        photo("obama2.jpg"),
    )
    .await;
    assert_eq!(
        (st, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("liveness_required")),
        "{v}"
    );

    let body = format!(r#"{{"subject":"{s}"}}"#);
    let (st, c) = call(
        &app,
        "POST",
        "/api/v1/liveness/challenges",
        Some(&device_key),
        json,
        body.into_bytes(),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    assert_eq!(c["actions"], serde_json::json!(["blink"]), "{c}");
    assert_eq!(c["instructions"], serde_json::json!(["Blink"]), "{c}");
    let frames: Vec<serde_json::Value> = consentry_testkit::blink_burst("obama.jpg", true)
        .into_iter()
        .map(|(t, jpeg)| serde_json::json!({"t_ms": t, "image": base64::engine::general_purpose::STANDARD.encode(jpeg)}))
        .collect();
    let answer = serde_json::json!({ "frames": frames })
        .to_string()
        .into_bytes();
    let path = format!(
        "/api/v1/liveness/challenges/{}/answer",
        c["nonce"].as_str().unwrap()
    );
    let (st, r) = call(&app, "POST", &path, Some(&device_key), json, answer.clone()).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["pass"], true, "{r}");
    let token = r["token"].as_str().unwrap().to_string();
    // The answer is taken once.
    let (st, v) = call(&app, "POST", &path, Some(&device_key), json, answer).await;
    assert_eq!(
        (st, v["code"].as_str()),
        (StatusCode::GONE, Some("challenge_expired")),
        "{v}"
    );

    let headers = [
        ("authorization", format!("Bearer {device_key}")),
        ("content-type", "image/jpeg".to_string()),
        ("x-consentry-liveness", token),
    ];
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, v) = call_h(&app, "POST", &verify, &h, photo("obama2.jpg")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        serde_json::json!({"decision": "allow", "checks": ["face", "liveness"]})
    );
    let (st, v) = call_h(&app, "POST", &verify, &h, photo("obama2.jpg")).await;
    assert_eq!(
        (st, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("liveness_required")),
        "spent: {v}"
    );
    // Enrolment over HTTP with a token says so too.
    let t = core.create_subject(&admin).await.unwrap();
    core.grant_consent(&admin, &t, Purpose::Verification, 30)
        .await
        .unwrap();
    let body = format!(r#"{{"subject":"{t}"}}"#);
    let (_, c) = call(
        &app,
        "POST",
        "/api/v1/liveness/challenges",
        Some(&admin_key),
        json,
        body.into_bytes(),
    )
    .await;
    let frames: Vec<serde_json::Value> = consentry_testkit::blink_burst("obama.jpg", true)
        .into_iter()
        .map(|(t, jpeg)| serde_json::json!({"t_ms": t, "image": base64::engine::general_purpose::STANDARD.encode(jpeg)}))
        .collect();
    let path_t = format!(
        "/api/v1/liveness/challenges/{}/answer",
        c["nonce"].as_str().unwrap()
    );
    let answer_t = serde_json::json!({ "frames": frames })
        .to_string()
        .into_bytes();
    let (_, r) = call(&app, "POST", &path_t, Some(&admin_key), json, answer_t).await;
    let enrol_headers = [
        ("authorization", format!("Bearer {admin_key}")),
        ("content-type", "image/jpeg".to_string()),
        (
            "x-consentry-liveness",
            r["token"].as_str().unwrap().to_string(),
        ),
    ];
    let h: Vec<(&str, &str)> = enrol_headers
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let enrol = format!("/api/v1/subjects/{t}/faces?purpose=verification");
    let (st, v) = call_h(&app, "POST", &enrol, &h, photo("obama.jpg")).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["checks"], serde_json::json!(["face", "liveness"]), "{v}");
    // A frame that is not base64, and a purpose liveness does not apply to.
    let (st, v) = call(
        &app,
        "POST",
        &path,
        Some(&device_key),
        json,
        br#"{"frames":[{"t_ms":0,"image":"***"}]}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (st, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request")),
        "{v}"
    );
    let pass_policy = r#"{"purpose":"pass","required":true}"#;
    let (st, _) = call(
        &app,
        "PUT",
        "/api/v1/liveness/policy",
        Some(&admin_key),
        json,
        pass_policy.into(),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    scratch.finish().await;
}

/// A 16 kHz WAV of `seconds` of silence.
fn silent_wav(seconds: usize) -> Vec<u8> {
    consentry_testkit::wav_16k(&vec![0.0; 16_000 * seconds])
}

/// Voice over HTTP: enrolment (a body or a multipart part), the audio codes, the modality
/// policy, and decisions that take a photo and a recording in one multipart form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_enrolment_policy_and_fused_decisions_over_http() {
    use consentry_core::Purpose;
    use consentry_testkit::voice_clip;
    let scratch = Scratch::new("server_voice").await;
    let url = scratch.sqlite_url("voice");
    let (mut core, _db) = core_at(&scratch, &url).await;
    core.set_voice(consentry_testkit::voice_engine());
    let core = Arc::new(core);
    let (_, key) = core.bootstrap_tenant("Voice").await.unwrap();
    let admin = core.authenticate(&key).await.unwrap();
    let (_, device) = core
        .issue_key(
            &admin,
            &consentry_core::KeyRequest::role(consentry_core::Role::Device),
        )
        .await
        .unwrap();
    let s = core.create_subject(&admin).await.unwrap();
    for purpose in [Purpose::Verification, Purpose::Access] {
        core.grant_consent(&admin, &s, purpose, 30).await.unwrap();
    }
    let app = consentry_server::router(core.clone());
    let k = Some(key.as_str());
    let multipart = Some("multipart/form-data; boundary=XyZ");
    let json = Some("application/json");
    let enrolled = voice_clip("1688-142285-0004.flac");
    let same = voice_clip("1688-142285-0005.flac");
    let other = voice_clip("2033-164914-0004.flac");

    // Enrolment: the `audio` part of a form, or the body; the first gives the person's token.
    let voices = |purpose: &str| format!("/api/v1/subjects/{s}/voices?purpose={purpose}");
    let (st, v) = call(
        &app,
        "POST",
        &voices("verification"),
        k,
        multipart,
        form(&[("audio", &enrolled)]),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["checks"], serde_json::json!(["voice"]));
    assert!(v["subject_token"].as_str().unwrap().starts_with("st_"));
    let (st, v) = call(
        &app,
        "POST",
        &voices("access"),
        k,
        Some("audio/flac"),
        enrolled.clone(),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(v["subject_token"].is_null());
    // What is not a usable recording, each with its code and status.
    for (ct, body, status, code) in [
        (
            "audio/wav",
            b"not a recording".to_vec(),
            StatusCode::BAD_REQUEST,
            "not_audio",
        ),
        (
            "text/plain",
            enrolled.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_audio",
        ),
        (
            "audio/wav",
            silent_wav(1),
            StatusCode::UNPROCESSABLE_ENTITY,
            "audio_too_short",
        ),
        (
            "audio/wav",
            silent_wav(31),
            StatusCode::PAYLOAD_TOO_LARGE,
            "audio_too_long",
        ),
    ] {
        let (st, v) = call(&app, "POST", &voices("access"), k, Some(ct), body).await;
        assert_eq!((st, v["code"].as_str()), (status, Some(code)), "{ct}: {v}");
    }

    // The policy: set by an admin, read by any key (a kiosk asks what to capture).
    for (purpose, modality) in [
        ("verification", "face_and_voice"),
        ("access", "face_and_voice"),
    ] {
        let body = format!(r#"{{"purpose":"{purpose}","modality":"{modality}"}}"#);
        let (st, v) = call(&app, "PUT", "/api/v1/modality/policy", k, json, body.into()).await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    let (st, v) = call(
        &app,
        "PUT",
        "/api/v1/modality/policy",
        k,
        json,
        br#"{"purpose":"access","modality":"voice"}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (st, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let (st, v) = call(
        &app,
        "GET",
        "/api/v1/modality/policy?purpose=verification",
        Some(&device),
        None,
        vec![],
    )
    .await;
    assert_eq!(
        (st, v["modality"].as_str()),
        (StatusCode::OK, Some("face_and_voice"))
    );

    // The face joins; decisions take both in one form, and say what ran.
    for purpose in ["verification", "access"] {
        let (st, v) = call(
            &app,
            "POST",
            &format!("/api/v1/subjects/{s}/faces?purpose={purpose}"),
            k,
            Some("image/jpeg"),
            photo("obama.jpg"),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    // Decisions at a gate (device key): what is sent, and the decision or the refusal.
    let probe = photo("obama2.jpg");
    let verify = format!("/api/v1/verify?subject={s}");
    let by_voice = format!("/api/v1/verify/voice?subject={s}");
    let decide = "/api/v1/access/decide".to_string();
    let both = |audio: &[u8]| form(&[("image", &probe), ("audio", audio)]);
    // (path, content type, body, the decision or the error code)
    type Case<'a> = (
        &'a String,
        Option<&'a str>,
        Vec<u8>,
        Result<&'a str, &'a str>,
    );
    let cases: [Case; 7] = [
        (&verify, multipart, both(&same), Ok("allow")),
        (&verify, multipart, both(&other), Ok("deny")),
        (
            &verify,
            Some("image/jpeg"),
            probe.clone(),
            Err("modality_policy"),
        ),
        (
            &verify,
            Some("audio/flac"),
            same.clone(),
            Err("modality_policy"),
        ),
        (
            &by_voice,
            Some("audio/flac"),
            same.clone(),
            Err("modality_policy"),
        ),
        (&decide, multipart, both(&same), Ok("allow")),
        (&decide, multipart, both(&other), Ok("deny")),
    ];
    for (path, ct, body, want) in cases {
        let (st, v) = call(&app, "POST", path, Some(&device), ct, body).await;
        match want {
            Ok(decision) => {
                assert_eq!(
                    (st, v["decision"].as_str()),
                    (StatusCode::OK, Some(decision)),
                    "{path}: {v}"
                );
                assert_eq!(
                    v["checks"],
                    serde_json::json!(["face", "voice"]),
                    "{path}: {v}"
                );
                if path == &decide {
                    // The gate names the person it let in, and no one otherwise.
                    let who = (decision == "allow").then_some(s.as_str());
                    assert_eq!(v["subject"].as_str(), who, "{v}");
                }
            }
            Err(code) => assert_eq!(
                (st, v["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some(code)),
                "{path}: {v}"
            ),
        }
    }
    scratch.finish().await;
}

/// Overload and rate limits are answered at once with their catalogue code and a
/// `Retry-After`, rather than with latency that grows with the load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_engine_and_a_rate_limit_say_when_to_retry() {
    let scratch = Scratch::new("server_overload").await;
    let (mut core, _db) = core_at(&scratch, &scratch.sqlite_url("o")).await;
    // No job may wait for a core: a burst larger than the cores is partly refused.
    core.set_engine_queue(consentry_core::EngineQueue {
        max_waiting: 0,
        max_wait: std::time::Duration::from_millis(1),
    });
    let core = Arc::new(core);
    let (_, key) = core.bootstrap_tenant("Rush hour").await.unwrap();
    let mut options = consentry_server::Options::default();
    options.rate_limits.set("admin=1000/1000").unwrap();
    options.rate_limits.set("device=0.2/1").unwrap();
    let app = consentry_server::router_with(core.clone(), &options);
    let send = |app: Router, key: String, uri: &'static str| async move {
        let req = Request::builder()
            .method("POST")
            .uri(uri)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "image/jpeg")
            .body(Body::from(photo("obama2.jpg")))
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        (status, retry, body)
    };
    let burst: Vec<_> = (0..12)
        .map(|_| tokio::spawn(send(app.clone(), key.clone(), "/api/v1/identify")))
        .collect();
    let (mut served, mut refused) = (0, 0);
    for t in burst {
        let (status, retry, body) = t.await.unwrap();
        if status == StatusCode::OK {
            // Nobody is enrolled: a served request is a deny, with no Retry-After.
            assert_eq!(body["decision"], "deny");
            assert_eq!(retry, None);
            served += 1;
        } else {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert_eq!(body["code"], "overloaded");
            assert_eq!(retry.as_deref(), Some("1"));
            refused += 1;
        }
    }
    assert!(
        served >= 1 && refused >= 1,
        "{served} served, {refused} refused"
    );

    // A device key allowed one request every five seconds: the second is told to wait five.
    let (st, minted) = call(
        &app,
        "POST",
        "/api/v1/keys",
        Some(&key),
        Some("application/json"),
        br#"{"role":"device","expires_in_days":30,"site":"gate-1"}"#.to_vec(),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{minted}");
    let device = minted["key"].as_str().unwrap().to_string();
    let (st, _, _) = send(app.clone(), device.clone(), "/api/v1/identify").await;
    assert_eq!(st, StatusCode::OK);
    let (st, retry, body) = send(app.clone(), device, "/api/v1/identify").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(retry.as_deref(), Some("5"));
    scratch.finish().await;
}

/// A client that hangs up, or a request that runs out of time, must not leave anything half
/// done: the request's work goes on to its end (its transactions commit or roll back), and the
/// database connections it used go back to the pool clean. Before, a request dropped while its
/// transaction was starting left its pooled connection inside a transaction that no one ended:
/// every later write failed, `database is locked` on SQLite, until the server restarted.
/// Hundreds of requests are dropped here at spread-out moments; then every call must succeed,
/// and every request sent, dropped or not, must have made its subject and its audit entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_requests_leave_no_transaction_open() {
    use std::time::Duration;
    let scratch = Scratch::new("server_dropped").await;
    for url in scratch.backends() {
        let (mut core, db) = core_at(&scratch, &url).await;
        core.set_abuse_rules(consentry_core::AbuseRules {
            burst_floor: 1_000_000,
            ..consentry_core::AbuseRules::default()
        });
        let core = Arc::new(core);
        let (tenant, key) = core.bootstrap_tenant("Hang-ups").await.unwrap();
        let mut options = consentry_server::Options::default();
        options.rate_limits.set("admin=100000/100000").unwrap();
        let app = consentry_server::router_with(core.clone(), &options);
        let create = || {
            Request::builder()
                .method("POST")
                .uri("/api/v1/subjects")
                .header("authorization", format!("Bearer {key}"))
                .body(Body::empty())
                .unwrap()
        };
        // How long one call takes here, to spread the drops over it.
        let started = std::time::Instant::now();
        for _ in 0..20 {
            let resp = app.clone().oneshot(create()).await.unwrap();
            assert_eq!(resp.status(), StatusCode::CREATED, "{url}");
        }
        let call_us = (started.elapsed().as_micros() / 20).max(50) as u64;
        let mut dropped = 0;
        for i in 0..800u64 {
            // Cut at a moment spread over the call's length, in parallel pairs so that the
            // pool's connections are shared.
            let cut = Duration::from_micros((i * 7919) % (call_us * 2));
            let a = tokio::time::timeout(cut, app.clone().oneshot(create()));
            let b = tokio::time::timeout(cut / 2, app.clone().oneshot(create()));
            let (a, b) = tokio::join!(a, b);
            dropped += usize::from(a.is_err()) + usize::from(b.is_err());
        }
        assert!(
            dropped > 200,
            "{url}: only {dropped} requests were cut short"
        );
        // Whatever the dropped requests were doing has ended; every call works.
        for _ in 0..20 {
            let resp = tokio::time::timeout(Duration::from_secs(30), app.clone().oneshot(create()))
                .await
                .expect("a call after the hang-ups never ended")
                .unwrap();
            let status = resp.status();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(
                status,
                StatusCode::CREATED,
                "{url}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        // Every request sent made its subject and its entry, the dropped ones too.
        let sent = 20 + 2 * 800 + 20;
        let count = |sql: &'static str| {
            let (db, tenant) = (db.clone(), tenant.clone());
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .bind(tenant)
                    .fetch_one(db.pool())
                    .await
                    .unwrap()
            }
        };
        let subjects = "SELECT COUNT(*) FROM subjects WHERE tenant_id = $1";
        let entries = "SELECT COUNT(*) FROM audit_entries WHERE tenant_id = $1 \
                       AND action = 'subject.create'";
        let start = std::time::Instant::now();
        while count(subjects).await < sent && start.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(count(subjects).await, sent, "{url}: subjects");
        assert_eq!(count(entries).await, sent, "{url}: audit entries");
    }
    scratch.finish().await;
}
