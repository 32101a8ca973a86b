//! Consentry's HTTP API: axum handlers that authenticate, translate JSON and images into one
//! `consentry-core` call each, and map the result back. The only place an HTTP status is
//! chosen is [`ApiError`], from the stable error code; axum's own rejections (a malformed path
//! or query, a wrong method, an unknown endpoint) come back in the same `{"code", "message"}`
//! shape.
//!
//! Layout: `routes/<resource>.rs` holds the handlers, `extract.rs` the extractors (key, body,
//! path, query), `error.rs` [`ApiError`], `observe.rs` request ids and log lines, `metrics.rs`
//! the counters, `openapi.rs` the document.
//!
//! Routes (JSON; images as the raw body with `Content-Type: image/jpeg` or `image/png`, at
//! most [`MAX_IMAGE_BYTES`]):
//! - `POST /api/v1/subjects` → `{"id"}`; `DELETE /api/v1/subjects/{id}`
//! - `GET /api/v1/subjects/{id}` → consents and template counts (never template bytes)
//! - `POST /api/v1/subjects/{id}/consents` `{"purpose", "retention_days"}` → `{"consent_id", "receipt"}`
//! - `DELETE /api/v1/subjects/{id}/consents/{cid}`: withdraws; the last consent for a purpose
//!   takes that purpose's templates with it
//! - `POST /api/v1/subjects/{id}/faces?purpose=…` (image) → `{"template_id"}`
//! - `POST /api/v1/subjects/{id}/voices?purpose=…` (WAV or FLAC) → `{"template_id"}`
//! - `POST /api/v1/verify?subject={id}` (image, or multipart `image` and/or `audio` as the
//!   verification purpose's modality policy says) → `{"decision": "allow"|"deny", "checks"}`;
//!   `POST /api/v1/verify/voice?subject={id}` (WAV or FLAC)
//! - `POST /api/v1/identify` (image, with an `audio` part under `face_and_voice`) →
//!   `{"decision": "allow"|"deny", "subject": id|null}`
//! - `PUT /api/v1/modality/policy` `{"purpose", "modality"}` (admins); `GET …?purpose=`
//! - `POST /api/v1/subjects/{id}/credentials` `{"card"}` or `{"pin"}` → `{"id"}`
//! - `POST /api/v1/access/decide`: a face (image body; multipart with `audio` under
//!   `face_and_voice`), `{"card"}` or `{"pin"}` →
//!   `{"decision", "subject"}`, the same shape for each
//! - `POST /api/v1/keys` `{"role", "expires_in_days"?, "site"?}` → `{"id", "key"}`;
//!   `GET /api/v1/keys`; `DELETE /api/v1/keys/{id}` (revoke); `POST /api/v1/keys/{id}/rotate`;
//!   `POST /api/v1/keys/{id}/reinstate` (admins)
//! - `GET /api/v1/subjects/{id}/accesses`: who acted on the record, when, for which stated
//!   purpose (from the audit log); with a key, or with the person's own token (`st_…`, given
//!   at the first enrolment; `POST /api/v1/subjects/{id}/token` gives a new one)
//! - `POST /api/v1/links` `{"action", "subject", "purpose", "minutes"}` → `{"id", "token",
//!   "expires_at"}`; `GET /api/v1/links/{token}`: the action, for the minting key only
//! - `POST /api/v1/subjects/{id}/passes` `{"access", "verifier"?, "valid_days"?}` →
//!   `{"pass_id", "pass": "CS1:…", "expires_at"}` (consent for purpose `pass`);
//!   `GET …/passes/{pid}/qr.svg|qr.png`; `POST …/passes/{pid}/revoke`;
//!   `POST /api/v1/passes/rotate` (admins); public, no key: `GET /api/v1/passes/trust?tenant=ID`
//!   (JWK Set) and `GET /api/v1/passes/revocations?tenant=ID` (signed list);
//!   `POST /api/v1/checkins` `{"pass"}` or a camera frame of the QR code (device keys with a site)
//! - `GET /api/v1/tenant/public-keys`: the audit-checkpoint verifier key and the receipt key
//! - `GET /api/v1/audit/checkpoint` (signed note), `/audit/entries?start&end`,
//!   `/audit/proof/inclusion?index&tree_size`, `/audit/proof/consistency?first&second`
//!   (admins and auditors)
//! - A request may state its purpose in `X-Consentry-Purpose`; reading a subject record as an
//!   operator requires it (`purpose_required`)
//! - `GET /openapi.json` (generated with utoipa from the handlers); `GET /healthz`; `GET /metrics` (Prometheus text: requests by route template and status,
//!   decisions by kind; no ids)
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use consentry_core::Core;
use consentry_types::ErrorCode;
use serde_json::json;

pub mod alerts;
pub mod client;
mod error;
mod extract;
mod limits;
mod metrics;
mod observe;
mod openapi;
mod routes;
mod ui;

pub use error::{ApiError, ErrorResponse};
pub use limits::{Rate, RateLimits};
pub use metrics::Metrics;
pub use observe::REQUEST_ID;
pub use openapi::ApiDoc;

use routes::{
    audit, consents, credentials, decisions, faces, keys, links, liveness, passes, subjects, voices,
};

/// Largest image body accepted.
pub const MAX_IMAGE_BYTES: usize = 10 << 20;

/// How long a caller waits for a request, body upload included, before it is answered
/// `request_timeout` (the request's work still runs to its end).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Shared state: the core, the counters behind `/metrics`, the request time limit.
#[derive(Clone)]
pub struct AppState {
    core: Arc<Core>,
    metrics: Arc<Metrics>,
    timeout: std::time::Duration,
    limiter: Arc<limits::Limiter>,
    ui: Arc<ui::Sessions>,
}

/// How a server runs: request time limit, rate limits, where alerts go.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long a request may take.
    pub timeout: std::time::Duration,
    /// Per-key rate limits by role.
    pub rate_limits: RateLimits,
    /// The alert webhook, if any.
    pub webhook: Option<alerts::Webhook>,
    /// How old the key-encryption-key epoch may get before the server rotates it (`None`: only
    /// `consentry admin rotate-keys` rotates).
    pub kek_rotation: Option<std::time::Duration>,
}

/// The default rotation period of the key-encryption key: a day. A backup taken before a
/// subject's deletion stops opening that subject's templates at the next rotation.
pub const KEK_ROTATION: std::time::Duration = std::time::Duration::from_secs(86_400);

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: REQUEST_TIMEOUT,
            rate_limits: RateLimits::default(),
            webhook: None,
            kek_rotation: Some(KEK_ROTATION),
        }
    }
}

/// Builds the router.
pub fn router(core: Arc<Core>) -> Router {
    router_with_timeout(core, REQUEST_TIMEOUT)
}

/// Builds the router with another request time limit.
pub fn router_with_timeout(core: Arc<Core>, timeout: std::time::Duration) -> Router {
    router_with(
        core,
        &Options {
            timeout,
            ..Options::default()
        },
    )
}

/// Builds the router with these options (the webhook is started by [`serve`]).
pub fn router_with(core: Arc<Core>, options: &Options) -> Router {
    let state = AppState {
        core,
        metrics: Arc::new(Metrics::default()),
        timeout: options.timeout,
        limiter: Arc::new(limits::Limiter::new(options.rate_limits)),
        ui: Arc::new(ui::Sessions::default()),
    };
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/api/v1/subjects", post(subjects::create_subject))
        .route(
            "/api/v1/subjects/{id}",
            delete(subjects::delete_subject).get(subjects::show_subject),
        )
        .route(
            "/api/v1/subjects/{id}/consents",
            post(consents::grant_consent),
        )
        .route(
            "/api/v1/subjects/{id}/consents/{cid}",
            delete(consents::withdraw_consent),
        )
        .route("/api/v1/subjects/{id}/faces", post(faces::enrol_face))
        .route("/api/v1/subjects/{id}/voices", post(voices::enrol_voice))
        .route("/api/v1/verify", post(decisions::verify_face))
        .route("/api/v1/verify/voice", post(voices::verify_voice))
        .route("/api/v1/identify", post(decisions::identify_face))
        .route(
            "/api/v1/subjects/{id}/credentials",
            post(credentials::add_credential),
        )
        .route("/api/v1/access/decide", post(decisions::decide_access))
        .route("/api/v1/subjects/{id}/accesses", get(audit::accesses))
        .route("/api/v1/tenant/public-keys", get(audit::public_keys))
        .route("/api/v1/keys", post(keys::create_key).get(keys::list_keys))
        .route("/api/v1/keys/{id}", delete(keys::revoke_key))
        .route("/api/v1/keys/{id}/rotate", post(keys::rotate_key))
        .route("/api/v1/keys/{id}/reinstate", post(keys::reinstate_key))
        .route("/api/v1/links", post(links::mint_link))
        .route("/api/v1/links/{token}", get(links::use_link))
        .route("/api/v1/subjects/{id}/token", post(links::subject_token))
        .route("/api/v1/subjects/{id}/passes", post(passes::issue_pass))
        .route(
            "/api/v1/subjects/{id}/passes/{pid}/qr.svg",
            get(passes::qr_svg),
        )
        .route(
            "/api/v1/subjects/{id}/passes/{pid}/qr.png",
            get(passes::qr_png),
        )
        .route(
            "/api/v1/subjects/{id}/passes/{pid}/revoke",
            post(passes::revoke_pass),
        )
        .route("/api/v1/passes/rotate", post(passes::rotate_key))
        .route("/api/v1/passes/trust", get(passes::trust))
        .route("/api/v1/passes/revocations", get(passes::revocations))
        .route("/api/v1/checkins", post(passes::check_in))
        .route("/api/v1/liveness/challenges", post(liveness::challenge))
        .route(
            "/api/v1/liveness/challenges/{nonce}/answer",
            post(liveness::answer),
        )
        .route("/api/v1/liveness/policy", put(liveness::set_policy))
        .route(
            "/api/v1/modality/policy",
            put(voices::set_policy).get(voices::get_policy),
        )
        .route("/api/v1/quality", post(faces::frame_check))
        .route("/api/v1/audit/checkpoint", get(audit::checkpoint))
        .route("/api/v1/audit/entries", get(audit::entries))
        .route("/api/v1/audit/proof/inclusion", get(audit::inclusion))
        .route("/api/v1/audit/proof/consistency", get(audit::consistency))
        .merge(ui::routes())
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this endpoint does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_IMAGE_BYTES))
        // `layer`, not `route_layer`: unknown endpoints get their request id and log line too
        // (their route shows as "unmatched").
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

/// Serves until SIGINT or SIGTERM, sweeping expired templates every hour and rotating
/// the key-encryption key when due. On the signal it
/// stops accepting connections, lets the requests in flight finish (each bounded by
/// [`REQUEST_TIMEOUT`]), then closes the database.
pub async fn serve(core: Arc<Core>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    serve_with(core, listener, Options::default()).await
}

/// [`serve`] with these options: alerts go to the webhook when one is set (else they are
/// logged), and clients are known by their address for the new-network rule.
pub async fn serve_with(
    core: Arc<Core>,
    listener: tokio::net::TcpListener,
    options: Options,
) -> std::io::Result<()> {
    let alerts = core.subscribe_alerts();
    let deliver = match options.webhook.clone() {
        Some(hook) => tokio::spawn(alerts::deliver(
            hook,
            alerts,
            std::time::Duration::from_secs(1),
        )),
        None => tokio::spawn(alerts::log_only(alerts)),
    };
    let sweeper = core.clone();
    let rotation = options.kek_rotation;
    let sweep = tokio::spawn(async move {
        // Every minute: forget key epochs another process destroyed, rotate when due; every
        // hour: the retention sweep.
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        let mut minutes = 0u64;
        loop {
            tick.tick().await;
            if let Err(e) = sweeper.sync_key_store().await {
                tracing::error!(error = %e, "key store check failed");
            }
            if let Some(period) = rotation {
                let secs = i64::try_from(period.as_secs()).unwrap_or(i64::MAX);
                match sweeper.rotate_keys_if_due(secs).await {
                    Ok(Some(r)) => {
                        tracing::info!(epoch = %r.epoch, rewrapped = r.rewrapped, destroyed = r.destroyed.len(), "key-encryption key rotated")
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "key rotation failed"),
                }
            }
            if minutes.is_multiple_of(60) {
                match sweeper.sweep_expired().await {
                    Ok(n) if n > 0 => tracing::info!(deleted = n, "retention sweep"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "retention sweep failed"),
                }
            }
            minutes += 1;
        }
    });
    let app = router_with(core.clone(), &options)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            shutdown_signal().await;
            tracing::info!("shutting down: draining requests in flight");
        })
        .await;
    sweep.abort();
    deliver.abort();
    core.close().await;
    tracing::info!("database closed");
    served
}
