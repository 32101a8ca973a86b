//! Any bytes as the JSON body of every endpoint that takes one, through the real router over
//! a real core (SQLite in a scratch directory, the real face engine): consents, keys, links,
//! credentials, access decisions, passes, check-ins, liveness challenges, answers and policy,
//! modality policy. `{S}` in a body stands for a subject who consented. Every answer must be a success or a 4xx with a catalogue code: never a
//! 5xx, never a panic. The first byte picks the endpoint and the content type.
//!
//! Needs the assets of `python3 setup/fetch.py` (ONNX Runtime and the models).
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use consentry_core::{AbuseRules, Core, Keyring, LivenessModels};
use consentry_face::challenge::Action;
use consentry_face::pad::{ChallengeModels, PadProfile, PassiveDetector};
use consentry_face::{EngineConfig, FaceEngine};
use consentry_server::{Options, Rate, RateLimits};
use consentry_types::ErrorCode;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct World {
    rt: tokio::runtime::Runtime,
    app: Router,
    admin: String,
    device: String,
    subject: String,
}

/// (method, path, device key?): every route that reads a JSON body. `{S}` is a subject who
/// consented to access and verification.
const ROUTES: &[(&str, &str, bool)] = &[
    ("POST", "/api/v1/subjects/{S}/consents", false),
    ("POST", "/api/v1/keys", false),
    ("POST", "/api/v1/links", false),
    ("POST", "/api/v1/subjects/{S}/credentials", false),
    ("POST", "/api/v1/access/decide", true),
    ("POST", "/api/v1/subjects/{S}/passes", false),
    ("POST", "/api/v1/checkins", true),
    ("POST", "/api/v1/liveness/challenges", true),
    (
        "POST",
        "/api/v1/liveness/challenges/AAAAAAAAAAAAAAAAAAAAAA/answer",
        true,
    ),
    ("PUT", "/api/v1/liveness/policy", false),
    ("PUT", "/api/v1/modality/policy", false),
];

const TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
];

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // One scratch directory per process; those of processes that are gone (libFuzzer
        // exits without running destructors) are removed first.
        let tmp = std::env::temp_dir();
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("consentry-fuzz-api-") {
                if !std::path::Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = tmp.join(format!("consentry-fuzz-api-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let engine = Arc::new(
            FaceEngine::load(&EngineConfig::default())
                .expect("the face engine (run `python3 setup/fetch.py` first)"),
        );
        let (app, admin, device, subject) = rt.block_on(async {
            let url = format!("sqlite://{}", dir.join("db/fuzz.db").display());
            let db = consentry_db::Db::open(&url).await.unwrap();
            let (keys, _) = Keyring::open(&dir.join("keys")).unwrap();
            let mut core = Core::new(db, engine, keys).await.unwrap();
            // As `consentry serve` sets it up: the default passive model and the challenge's.
            let assets = consentry_face::runtime::Assets::locate();
            let profile = PadProfile::parse("faceplugin").unwrap();
            core.set_liveness(
                LivenessModels {
                    passive: PassiveDetector::load(&assets, &profile, 1).unwrap(),
                    challenge: ChallengeModels::load(&assets, 1).unwrap(),
                },
                vec![
                    Action::Blink,
                    Action::TurnLeft,
                    Action::TurnRight,
                    Action::LookUp,
                ],
            );
            // The fuzzer sends thousands of requests a second with one key: no burst rule.
            core.set_abuse_rules(AbuseRules {
                burst_floor: i64::MAX / 4,
                distinct_reads_floor: i64::MAX / 4,
                ..AbuseRules::default()
            });
            let core = Arc::new(core);
            let (_, admin) = core.bootstrap_tenant("Fuzz").await.unwrap();
            let p = core.authenticate(&admin).await.unwrap();
            let subject = core.create_subject(&p).await.unwrap();
            for purpose in [
                consentry_core::Purpose::Verification,
                consentry_core::Purpose::Access,
            ] {
                core.grant_consent(&p, &subject, purpose, 30).await.unwrap();
            }
            let unlimited = Rate {
                per_second: 1e9,
                burst: 1e9,
            };
            let options = Options {
                rate_limits: RateLimits {
                    admin: unlimited,
                    operator: unlimited,
                    device: unlimited,
                    auditor: unlimited,
                },
                kek_rotation: None,
                ..Options::default()
            };
            let device = core
                .issue_key(
                    &p,
                    &consentry_core::KeyRequest {
                        role: consentry_core::Role::Device,
                        expires_in_days: None,
                        site: Some("gate-1".into()),
                    },
                )
                .await
                .unwrap()
                .1;
            let app = consentry_server::router_with(core, &options);
            (app, admin, device, subject)
        });
        World {
            rt,
            app,
            admin,
            device,
            subject,
        }
    })
}

/// The body with each `{S}` replaced by the subject's id, so that inputs reach past the
/// subject lookup.
fn with_subject(body: &[u8], subject: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest.windows(3).position(|w| w == b"{S}") {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(subject.as_bytes());
        rest = &rest[at + 3..];
    }
    out.extend_from_slice(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let w = world();
    let (method, path, device) = ROUTES[usize::from(pick) % ROUTES.len()];
    let content_type = TYPES[usize::from(pick / 16) % TYPES.len()];
    let key = if device { &w.device } else { &w.admin };
    let req = Request::builder()
        .method(method)
        .uri(path.replace("{S}", &w.subject))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", content_type)
        .header("x-consentry-purpose", "fuzzing")
        .body(Body::from(with_subject(body, &w.subject)))
        .unwrap();
    let (status, bytes) = w.rt.block_on(async {
        let resp = w.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        (status, resp.into_body().collect().await.unwrap().to_bytes())
    });
    assert!(
        status.as_u16() < 500,
        "{method} {path}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    if !status.is_success() {
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("an error body is JSON");
        let code = v["code"].as_str().unwrap_or_default();
        let known = ErrorCode::ALL.iter().find(|c| c.as_str() == code);
        assert_eq!(known.map(|c| c.http_status()), Some(status.as_u16()), "{v}");
    }
});
