//! `/api/v1/keys`: issue, list, revoke, rotate and reinstate API keys (admins only).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use consentry_core::{KeyRequest, Role};
use consentry_types::ErrorCode;
use serde::Deserialize;
use serde_json::json;

use crate::extract::{created, json_body, Auth, Body, Path};
use crate::{ApiError, AppState, ErrorResponse};

/// `{"role", "expires_in_days"?, "site"?}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKeyRequest {
    /// `admin`, `operator`, `device` or `auditor`.
    #[schema(pattern = "^(admin|operator|device|auditor)$")]
    role: String,
    /// 1 to 3650; none for no expiry.
    #[schema(minimum = 1, maximum = 3650)]
    #[serde(default, deserialize_with = "crate::extract::whole::option_i64")]
    expires_in_days: Option<i64>,
    /// A device key's site: 1 to 100 letters, digits, `-`, `_`, `.`.
    #[schema(max_length = 100)]
    site: Option<String>,
}

fn role(name: &str) -> Result<Role, ApiError> {
    match name {
        "admin" => Ok(Role::Admin),
        "operator" => Ok(Role::Operator),
        "device" => Ok(Role::Device),
        "auditor" => Ok(Role::Auditor),
        _ => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "role must be admin, operator, device or auditor",
        )),
    }
}

#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", security(("bearer" = [])),
    request_body = NewKeyRequest,
    responses((status = 201, description = "`{\"id\", \"key\"}`: the key is shown this once and stored only as its SHA-256"),
        (status = 400, description = "`invalid_request`", body = ErrorResponse), (status = 401, description = "`unauthorized`, `key_expired`, `key_revoked`", body = ErrorResponse), (status = 403, description = "`forbidden`, `key_suspended`", body = ErrorResponse)))]
pub(crate) async fn create_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let req: NewKeyRequest = json_body(&headers, &body)?;
    let req = KeyRequest {
        role: role(&req.role)?,
        expires_in_days: req.expires_in_days,
        site: req.site,
    };
    let (id, key) = s.core.issue_key(&p, &req).await?;
    Ok(created(json!({ "id": id, "key": key })))
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", security(("bearer" = [])),
    responses((status = 200, description = "`{\"keys\": [{\"id\", \"role\", \"status\", \"created_at\", \"expires_at\", \"revoked_at\", \"site\", \"suspended_at\", \"suspended_reason\"}]}`; never a secret"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden`", body = ErrorResponse)))]
pub(crate) async fn list_keys(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "keys": s.core.list_keys(&p).await? })))
}

#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204, description = "revoked for good (a key already revoked stays so: nothing changes)"), (status = 400, description = "`invalid_request` (a key cannot revoke itself)", body = ErrorResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden`", body = ErrorResponse), (status = 404, description = "`not_found`", body = ErrorResponse)))]
pub(crate) async fn revoke_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.core.revoke_key(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/keys/{id}/rotate", tag = "keys", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 201, description = "`{\"id\", \"key\"}`: a new key with the same role, site and expiry; the old one is revoked"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden`", body = ErrorResponse), (status = 404, description = "`not_found`", body = ErrorResponse)))]
pub(crate) async fn rotate_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (id, key) = s.core.rotate_key(&p, &id).await?;
    Ok(created(json!({ "id": id, "key": key })))
}

#[utoipa::path(post, path = "/api/v1/keys/{id}/reinstate", tag = "keys", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204, description = "the suspension is lifted (recorded in the audit log)"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden`", body = ErrorResponse), (status = 404, description = "`not_found` (no such suspended key)", body = ErrorResponse)))]
pub(crate) async fn reinstate_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.core.reinstate_key(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
