//! Consentry's HTTP API: axum handlers that authenticate, translate JSON and images into one
//! `consentry-core` call each, and map the result back. The only place an HTTP status is
//! chosen is [`ApiError`], from the stable error code.
//!
//! Routes (JSON; images as the raw body with `Content-Type: image/jpeg` or `image/png`, at
//! most [`MAX_IMAGE_BYTES`]):
//! - `POST /api/v1/subjects` → `{"id"}`; `DELETE /api/v1/subjects/{id}`
//! - `GET /api/v1/subjects/{id}` → consents and template counts (never template bytes)
//! - `POST /api/v1/subjects/{id}/consents` `{"purpose", "retention_days"}` → `{"consent_id", "receipt"}`
//! - `DELETE /api/v1/subjects/{id}/consents/{cid}`: withdraws; the last consent for a purpose
//!   takes that purpose's templates with it
//! - `POST /api/v1/subjects/{id}/faces?purpose=…` (image) → `{"template_id"}`
//! - `POST /api/v1/verify?subject={id}` (image) → `{"decision": "allow"|"deny", "score"}`
//! - `POST /api/v1/identify` (image) → `{"decision": "allow"|"deny", "subject": id|null}`
//! - `POST /api/v1/subjects/{id}/credentials` `{"card"}` or `{"pin"}` → `{"id"}`
//! - `POST /api/v1/access/decide`: a face (image body), `{"card"}` or `{"pin"}` →
//!   `{"decision", "subject"}`, the same shape for each
//! - `GET /openapi.json` (generated with utoipa from the handlers); `GET /healthz`; `GET /metrics` (Prometheus text: requests by route template and status,
//!   decisions by kind; no ids)
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use consentry_core::{Core, CoreError, Credential, Principal, Purpose};
use consentry_types::{ErrorBody, ErrorCode, HasErrorCode};
use serde::Deserialize;
use serde_json::json;

/// Largest image body accepted.
pub const MAX_IMAGE_BYTES: usize = 10 << 20;

/// The one error type of the API: `{"code", "message"}` with the code's HTTP status.
/// Messages are generic for server-side failures; details stay in the server's log.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let code = e.code();
        let message = if code.http_status() >= 500 {
            "internal error".to_string()
        } else {
            e.to_string()
        };
        if code.http_status() >= 500 {
            // Inside the request's span: the log line carries its request id.
            tracing::error!(%code, error = %e, "request failed");
        }
        ApiError { code, message }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            Json(ErrorBody {
                code: self.code,
                message: self.message,
            }),
        )
            .into_response()
    }
}

/// Shared state: the core and the counters behind `/metrics`.
#[derive(Clone)]
pub struct AppState {
    core: Arc<Core>,
    metrics: Arc<Metrics>,
}

/// Prometheus counters. Labels carry routes, statuses and decisions only: never a subject id,
/// a key or anything about a face.
#[derive(Default)]
pub struct Metrics {
    requests: std::sync::Mutex<std::collections::BTreeMap<(String, String, u16), u64>>,
    decisions: std::sync::Mutex<std::collections::BTreeMap<(&'static str, &'static str), u64>>,
}

impl Metrics {
    fn request(&self, method: &str, route: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method.to_string(), route.to_string(), status))
                .or_default() += 1;
        }
    }

    fn decision(&self, kind: &'static str, allow: bool) {
        if let Ok(mut m) = self.decisions.lock() {
            *m.entry((kind, if allow { "allow" } else { "deny" }))
                .or_default() += 1;
        }
    }

    fn render(&self) -> String {
        let mut out = String::from(
            "# HELP consentry_requests_total HTTP requests by method, route and status.\n\
             # TYPE consentry_requests_total counter\n",
        );
        if let Ok(m) = self.requests.lock() {
            for ((method, route, status), n) in m.iter() {
                out.push_str(&format!(
                    "consentry_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}\n"
                ));
            }
        }
        out.push_str(
            "# HELP consentry_decisions_total Access and verification decisions.\n\
             # TYPE consentry_decisions_total counter\n",
        );
        if let Ok(m) = self.decisions.lock() {
            for ((kind, decision), n) in m.iter() {
                out.push_str(&format!(
                    "consentry_decisions_total{{kind=\"{kind}\",decision=\"{decision}\"}} {n}\n"
                ));
            }
        }
        out
    }
}

/// The request id header: taken from the caller when it is a plain token (so a gateway's id
/// carries through), generated otherwise, and returned on every response.
pub const REQUEST_ID: &str = "x-request-id";

fn request_id(headers: &HeaderMap) -> String {
    let given = headers.get(REQUEST_ID).and_then(|v| v.to_str().ok());
    match given {
        Some(id)
            if (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) =>
        {
            id.to_string()
        }
        _ => consentry_core::new_id(),
    }
}

/// Around every routed request: the request id (header and log span), one log line with the
/// route template, status and duration, and the counters behind `/metrics`. Nothing of the
/// body, the concrete path (it holds ids) or the caller's key is logged.
async fn observe(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument;
    let method = req.method().to_string();
    // The route template (`/api/v1/subjects/{id}`), never the concrete path with its ids.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let id = request_id(req.headers());
    let span = tracing::info_span!("request", id = %id, method = %method, route = %route);
    let started = std::time::Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "handled"
        );
    });
    s.metrics.request(&method, &route, status);
    if let Ok(v) = header::HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// The authenticated caller, from `Authorization: Bearer KEY`.
pub struct Auth(Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::new(ErrorCode::Unauthorized, "missing Authorization: Bearer KEY")
            })?;
        Ok(Auth(state.core.authenticate(key.trim()).await?))
    }
}

/// `201 Created` with a JSON body.
fn created(body: serde_json::Value) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

/// The raw request body, with body-limit and read failures as [`ApiError`]s.
pub struct Body(axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => Ok(Body(b)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body is larger than {MAX_IMAGE_BYTES} bytes"),
            )),
            Err(e) => Err(ApiError::new(ErrorCode::InvalidRequest, e.body_text())),
        }
    }
}

/// The error body every endpoint answers with (see the code catalogue in consentry-types).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorResponse {
    /// A stable snake_case code, e.g. `no_face`.
    pub code: String,
    /// A human-readable message.
    pub message: String,
}

/// The OpenAPI document, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Consentry", description = "Consent-first biometric verification and access control"),
    paths(create_subject, delete_subject, show_subject, grant_consent, withdraw_consent, enrol_face,
        verify_face, identify_face, add_credential, decide_access),
    components(schemas(ErrorResponse, ConsentRequest, CredentialRequest)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Builds the router.
pub fn router(core: Arc<Core>) -> Router {
    let state = AppState {
        core,
        metrics: Arc::new(Metrics::default()),
    };
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(|| async { Json(<ApiDoc as utoipa::OpenApi>::openapi()) }),
        )
        .route("/api/v1/subjects", post(create_subject))
        .route(
            "/api/v1/subjects/{id}",
            delete(delete_subject).get(show_subject),
        )
        .route("/api/v1/subjects/{id}/consents", post(grant_consent))
        .route(
            "/api/v1/subjects/{id}/consents/{cid}",
            delete(withdraw_consent),
        )
        .route("/api/v1/subjects/{id}/faces", post(enrol_face))
        .route("/api/v1/verify", post(verify_face))
        .route("/api/v1/identify", post(identify_face))
        .route("/api/v1/subjects/{id}/credentials", post(add_credential))
        .route("/api/v1/access/decide", post(decide_access))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_IMAGE_BYTES))
        // `layer`, not `route_layer`: unknown endpoints get their request id and log line too
        // (their route shows as "unmatched").
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}

/// An image body: content type checked, size limited by the router's body limit.
fn image_body(headers: &HeaderMap, Body(body): Body) -> Result<Vec<u8>, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !matches!(
        ct.split(';').next().map(str::trim),
        Some("image/jpeg" | "image/png")
    ) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedFormat,
            "send the image as image/jpeg or image/png",
        ));
    }
    Ok(body.to_vec())
}

/// JSON body with malformed input mapped to `invalid_request`.
fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "send JSON with Content-Type: application/json",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("malformed JSON: {e}")))
}

#[utoipa::path(post, path = "/api/v1/subjects", tag = "subjects", security(("bearer" = [])),
    responses((status = 201, description = "`{\"id\"}`"), (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden`", body = ErrorResponse)))]
async fn create_subject(State(s): State<AppState>, Auth(p): Auth) -> Result<Response, ApiError> {
    let id = s.core.create_subject(&p).await?;
    Ok(created(json!({ "id": id })))
}

#[utoipa::path(delete, path = "/api/v1/subjects/{id}", tag = "subjects", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204, description = "deleted; its data key destroyed"), (status = 404, description = "`not_found`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
async fn delete_subject(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.core.delete_subject(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/subjects/{id}", tag = "subjects", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "consents and template counts (never template bytes)"), (status = 404, description = "`not_found`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
async fn show_subject(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<consentry_core::SubjectView>, ApiError> {
    Ok(Json(s.core.subject(&p, &id).await?))
}

#[utoipa::path(delete, path = "/api/v1/subjects/{id}/consents/{cid}", tag = "consents", security(("bearer" = [])),
    params(("id" = String, Path), ("cid" = String, Path)),
    responses((status = 204, description = "withdrawn; the last consent for a purpose deletes its templates"), (status = 404, description = "`not_found`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
async fn withdraw_consent(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, cid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.core.withdraw_consent(&p, &id, &cid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ConsentRequest {
    purpose: String,
    retention_days: i64,
}

#[utoipa::path(post, path = "/api/v1/subjects/{id}/consents", tag = "consents", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = ConsentRequest,
    responses((status = 201, description = "`{\"consent_id\", \"receipt\"}` with an Ed25519-signed receipt"), (status = 400, description = "`invalid_request`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
async fn grant_consent(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let req: ConsentRequest = json_body(&headers, &body)?;
    let purpose = Purpose::parse(&req.purpose)?;
    let receipt = s
        .core
        .grant_consent(&p, &id, purpose, req.retention_days)
        .await?;
    Ok(created(
        json!({ "consent_id": receipt.consent_id, "receipt": receipt }),
    ))
}

#[derive(Deserialize)]
struct PurposeQuery {
    purpose: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/subjects/{id}/faces", tag = "faces", security(("bearer" = [])),
    params(("id" = String, Path), ("purpose" = String, Query, description = "access or verification")),
    request_body(content = Vec<u8>, content_type = "image/jpeg", description = "a JPEG or PNG photo, at most 10 MiB"),
    responses((status = 201, description = "`{\"template_id\"}`"), (status = 403, description = "`consent_required`", body = ErrorResponse),
        (status = 422, description = "`no_face`, `multiple_faces`, `face_too_small`, `too_blurry`, `face_turned`, ...", body = ErrorResponse),
        (status = 413, description = "`payload_too_large`, `image_too_large`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
async fn enrol_face(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<PurposeQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let purpose = Purpose::parse(q.purpose.as_deref().unwrap_or(""))?;
    let image = image_body(&headers, body)?;
    let template = s.core.enrol_face(&p, &id, purpose, image).await?;
    Ok(created(json!({ "template_id": template })))
}

#[derive(Deserialize)]
struct SubjectQuery {
    subject: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/verify", tag = "decisions", security(("bearer" = [])), params(("subject" = String, Query)),
    request_body(content = Vec<u8>, content_type = "image/jpeg"),
    responses((status = 200, description = "`{\"decision\": \"allow\"|\"deny\", \"score\"}`; an unknown subject and a non-match look the same"), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
async fn verify_face(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<SubjectQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let subject = q
        .subject
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidRequest, "?subject=ID is required"))?;
    let image = image_body(&headers, body)?;
    let d = s.core.verify(&p, &subject, image).await?;
    s.metrics.decision("verify", d.allow);
    let decision = if d.allow { "allow" } else { "deny" };
    Ok(Json(json!({ "decision": decision, "score": d.score })))
}

#[utoipa::path(post, path = "/api/v1/identify", tag = "decisions", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "image/jpeg"),
    responses((status = 200, description = "`{\"decision\", \"subject\": id|null}`; an unmatched face is dropped"), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
async fn identify_face(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let image = image_body(&headers, body)?;
    let id = s.core.identify(&p, image).await?;
    s.metrics.decision("identify", id.allow);
    let decision = if id.allow { "allow" } else { "deny" };
    Ok(Json(json!({ "decision": decision, "subject": id.subject })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CredentialRequest {
    card: Option<String>,
    pin: Option<String>,
}

impl CredentialRequest {
    fn credential(self) -> Result<Credential, ApiError> {
        match (self.card, self.pin) {
            (Some(c), None) => Ok(Credential::Card(c)),
            (None, Some(p)) => Ok(Credential::Pin(p)),
            _ => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "give exactly one of \"card\" or \"pin\"",
            )),
        }
    }
}

#[utoipa::path(post, path = "/api/v1/subjects/{id}/credentials", tag = "credentials", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = CredentialRequest,
    responses((status = 201, description = "`{\"id\"}`"), (status = 409, description = "`already_exists`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
async fn add_credential(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let credential = json_body::<CredentialRequest>(&headers, &body)?.credential()?;
    let cid = s.core.add_credential(&p, &id, &credential).await?;
    Ok(created(json!({ "id": cid })))
}

#[utoipa::path(post, path = "/api/v1/access/decide", tag = "decisions", security(("bearer" = [])),
    request_body(content = CredentialRequest, description = "`{\"card\"}` or `{\"pin\"}` as JSON, or a face as image/jpeg or image/png"),
    responses((status = 200, description = "`{\"decision\", \"subject\"}`, the same for face, card and PIN"), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
/// The access decision from a face (image body), a card or a PIN (JSON): one shape for all.
async fn decide_access(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let id = if ct.starts_with("image/") {
        let id = s.core.identify(&p, image_body(&headers, body)?).await?;
        s.metrics.decision("face", id.allow);
        id
    } else {
        let credential = json_body::<CredentialRequest>(&headers, &body.0)?.credential()?;
        let id = s.core.decide_credential(&p, &credential).await?;
        s.metrics.decision(
            if matches!(credential, Credential::Card(_)) {
                "card"
            } else {
                "pin"
            },
            id.allow,
        );
        id
    };
    let decision = if id.allow { "allow" } else { "deny" };
    Ok(Json(json!({ "decision": decision, "subject": id.subject })))
}

/// Serves until Ctrl-C, sweeping expired templates every hour.
pub async fn serve(core: Arc<Core>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let sweeper = core.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match sweeper.sweep_expired().await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "retention sweep"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "retention sweep failed"),
            }
        }
    });
    axum::serve(listener, router(core))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
