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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_on_both_backends() {
    let scratch = Scratch::new("server").await;
    let dir = scratch.dir.clone();
    for url in scratch.backends() {
        let db = Db::open(&url).await.unwrap();
        let (keys, _) = Keyring::load_or_create(&dir.join(format!("{}.key", url.len()))).unwrap();
        let core = Arc::new(Core::new(db, engine(), keys).unwrap());
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
        assert_eq!(body, serde_json::json!({ "decision": "allow" }));
        let deny = serde_json::json!({ "decision": "deny" });
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
    let (keys, _) = Keyring::load_or_create(&scratch.dir.join("r.key")).unwrap();
    let app = consentry_server::router(Arc::new(Core::new(db, engine(), keys).unwrap()));
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
    let (keys, _) = Keyring::load_or_create(&scratch.dir.join("j.key")).unwrap();
    let core = Arc::new(Core::new(db, engine(), keys).unwrap());
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
async fn a_request_past_the_time_limit_is_abandoned_with_a_catalogue_code() {
    let scratch = Scratch::new("server_timeout").await;
    let db = Db::open(&scratch.sqlite_url("t")).await.unwrap();
    let (keys, _) = Keyring::load_or_create(&scratch.dir.join("t.key")).unwrap();
    let core = Arc::new(Core::new(db, engine(), keys).unwrap());
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
