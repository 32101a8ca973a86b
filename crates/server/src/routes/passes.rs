//! `/api/v1/subjects/{id}/passes`, `/api/v1/passes/…`, `/api/v1/checkins`: signed QR passes,
//! their public trust and revocation lists, and venue check-ins.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::extract::{created, json_body, Auth, Body, Path, Query};
use crate::{ApiError, AppState, ErrorResponse};

/// `{"access", "verifier"?, "valid_days"?, "alg"?}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PassRequest {
    /// The permission, e.g. `site-12` (1 to 100 letters, digits, `-`, `_`, `.`).
    #[schema(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9._-]{1,100}$")]
    access: String,
    /// The venue or site that will check the pass (default: `access`); the pass's pseudonym is
    /// this verifier's own.
    #[schema(min_length = 1, max_length = 100, pattern = "^[A-Za-z0-9._-]{1,100}$")]
    verifier: Option<String>,
    /// Days of validity, 1 to 365 (default 30).
    #[schema(minimum = 1, maximum = 365)]
    #[serde(default, deserialize_with = "crate::extract::whole::option_i64")]
    valid_days: Option<i64>,
    /// `EdDSA` (default) or `ES256`, for verifiers that cannot check EdDSA.
    #[schema(pattern = "^(EdDSA|ES256)$")]
    alg: Option<String>,
}

fn alg(a: Option<&str>) -> Result<consentry_pass::Alg, ApiError> {
    match a {
        None => Ok(consentry_pass::Alg::EdDSA),
        Some(a) => consentry_pass::Alg::parse(a).ok_or_else(|| {
            ApiError::new(
                consentry_types::ErrorCode::InvalidRequest,
                "alg must be EdDSA or ES256",
            )
        }),
    }
}

#[utoipa::path(post, path = "/api/v1/subjects/{id}/passes", tag = "passes", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = PassRequest,
    responses((status = 201, description = "`{\"pass_id\", \"pass\": \"CS1:…\", \"expires_at\"}`"),
        (status = 400, description = "`invalid_request`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`forbidden`, `consent_required` (purpose `pass`)", body = ErrorResponse), (status = 404, description = "`not_found`", body = ErrorResponse)))]
pub(crate) async fn issue_pass(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let req: PassRequest = json_body(&headers, &body)?;
    let alg = alg(req.alg.as_deref())?;
    let issued = s
        .core
        .issue_pass(
            &p,
            &id,
            &req.access,
            req.verifier.as_deref(),
            req.valid_days,
            alg,
        )
        .await?;
    Ok(created(json!(issued)))
}

fn image(content_type: &'static str, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response()
}

fn qr_error(e: consentry_pass::PassError) -> ApiError {
    ApiError::from(consentry_core::CoreError::Internal(format!("qr: {e}")))
}

#[utoipa::path(get, path = "/api/v1/subjects/{id}/passes/{pid}/qr.svg", tag = "passes", security(("bearer" = [])),
    params(("id" = String, Path), ("pid" = String, Path)),
    responses((status = 200, description = "the live pass as an SVG QR code (error correction M)", content_type = "image/svg+xml"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden`", body = ErrorResponse),
        (status = 404, description = "`not_found` (also once revoked or expired)", body = ErrorResponse)))]
pub(crate) async fn qr_svg(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, pid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let text = s.core.pass_text(&p, &id, &pid).await?;
    let svg = consentry_pass::qr::svg(&text, 6).map_err(qr_error)?;
    Ok(image("image/svg+xml", svg.into_bytes()))
}

#[utoipa::path(get, path = "/api/v1/subjects/{id}/passes/{pid}/qr.png", tag = "passes", security(("bearer" = [])),
    params(("id" = String, Path), ("pid" = String, Path)),
    responses((status = 200, description = "the live pass as a PNG QR code (error correction M)", content_type = "image/png"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden`", body = ErrorResponse),
        (status = 404, description = "`not_found` (also once revoked or expired)", body = ErrorResponse)))]
pub(crate) async fn qr_png(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, pid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let text = s.core.pass_text(&p, &id, &pid).await?;
    let png = consentry_pass::qr::png(&text, 6).map_err(qr_error)?;
    Ok(image("image/png", png))
}

#[utoipa::path(post, path = "/api/v1/subjects/{id}/passes/{pid}/revoke", tag = "passes", security(("bearer" = [])),
    params(("id" = String, Path), ("pid" = String, Path)),
    responses((status = 200, description = "`{\"revoked\": true}`: on the revocation list until the pass expires"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden`", body = ErrorResponse),
        (status = 404, description = "`not_found`", body = ErrorResponse)))]
pub(crate) async fn revoke_pass(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, pid)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    s.core.revoke_pass(&p, &id, &pid).await?;
    Ok(Json(json!({ "revoked": true })))
}

#[utoipa::path(post, path = "/api/v1/passes/rotate", operation_id = "rotate_pass_key", tag = "passes", security(("bearer" = [])),
    responses((status = 200, description = "`{\"kids\": [EdDSA, ES256]}`: the new signing keys' ids (hex); the old ones stay in the trust list until their last pass expires"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden`", body = ErrorResponse)))]
pub(crate) async fn rotate_key(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<serde_json::Value>, ApiError> {
    let kids = s.core.rotate_pass_key(&p).await?;
    Ok(Json(json!({ "kids": kids })))
}

#[derive(Deserialize)]
pub(crate) struct TenantQuery {
    tenant: String,
    alg: Option<String>,
}

fn public(body: serde_json::Value) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
        Json(body),
    )
        .into_response()
}

#[utoipa::path(get, path = "/api/v1/passes/trust", tag = "passes",
    params(("tenant" = String, Query, description = "the issuing tenant's id")),
    description = "Public: no key. A verifier keeps this document to check passes offline.",
    responses((status = 200, description = "a JWK Set: `{\"issuer\", \"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"kid\", \"x\", \"alg\", \"use\"}]}`"),
        (status = 400, description = "`invalid_request`", body = ErrorResponse), (status = 404, description = "`not_found`", body = ErrorResponse)))]
pub(crate) async fn trust(
    State(s): State<AppState>,
    Query(q): Query<TenantQuery>,
) -> Result<Response, ApiError> {
    let list = s.core.pass_trust_list(&q.tenant).await?;
    Ok(public(list.to_json()))
}

#[utoipa::path(get, path = "/api/v1/passes/revocations", tag = "passes",
    params(("tenant" = String, Query, description = "the issuing tenant's id"),
        ("alg" = Option<String>, Query, description = "`EdDSA` (default) or `ES256`: what the list is signed with", pattern = "^(EdDSA|ES256)$")),
    description = "Public: no key. Signed when asked for; a verifier refuses a list older than it allows.",
    responses((status = 200, description = "`{\"issuer\", \"version\", \"issued_at\", \"revoked\": [hex], \"signed\"}`: `signed` is the base64url COSE_Sign1 a verifier trusts"),
        (status = 400, description = "`invalid_request`", body = ErrorResponse), (status = 404, description = "`not_found`", body = ErrorResponse)))]
pub(crate) async fn revocations(
    State(s): State<AppState>,
    Query(q): Query<TenantQuery>,
) -> Result<Response, ApiError> {
    let (list, signed) = s
        .core
        .pass_revocations(&q.tenant, alg(q.alg.as_deref())?)
        .await?;
    Ok(public(list.to_json(&signed)))
}

/// `{"pass": "CS1:…"}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckInRequest {
    /// The pass text, as read from its QR code.
    #[schema(min_length = 1, max_length = 4296)]
    pass: String,
}

#[utoipa::path(post, path = "/api/v1/checkins", tag = "passes", security(("bearer" = [])),
    request_body(content(
        (CheckInRequest = "application/json"),
        (Vec<u8> = "image/jpeg"),
        (Vec<u8> = "image/png"),
    )),
    description = "A device key with a site checks a pass in at that site: the pass's text as JSON, or a camera frame of its QR code (read, then dropped). Only the pass's pseudonym (this venue's own), the venue and the time are kept, for 14 days.",
    responses((status = 201, description = "`{\"decision\": \"allow\", \"venue\", \"pseudonym\", \"at\"}`"),
        (status = 400, description = "`invalid_request`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`forbidden`", body = ErrorResponse),
        (status = 422, description = "`pass_malformed` (also: no pass could be read in the image), `pass_bad_signature`, `pass_unknown_key`, `pass_expired`, `pass_not_yet_valid`, `pass_revoked`, `pass_wrong_verifier`", body = ErrorResponse)))]
pub(crate) async fn check_in(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let c = if crate::extract::is_image_type(crate::extract::content_type(&headers)) {
        s.core.check_in_photo(&p, body.to_vec()).await?
    } else {
        let req: CheckInRequest = json_body(&headers, &body)?;
        s.core.check_in(&p, &req.pass).await?
    };
    Ok(created(json!(c)))
}
