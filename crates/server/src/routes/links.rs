//! `/api/v1/links`: scoped, short-lived links; `/api/v1/subjects/{id}/token`: the person's
//! own token.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::extract::{created, json_body, Auth, Body, Path};
use crate::{ApiError, AppState, ErrorResponse};

/// `{"action", "subject", "purpose", "minutes"}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkRequest {
    /// `subject.read` or `subject.accesses`.
    #[schema(pattern = "^subject\\.(read|accesses)$")]
    action: String,
    /// The subject's id.
    subject: String,
    /// Why (recorded with every use, shown to the person).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]+$"
    )]
    purpose: String,
    /// 1 to 60.
    #[schema(minimum = 1, maximum = 60)]
    #[serde(deserialize_with = "crate::extract::whole::i64")]
    minutes: i64,
}

#[utoipa::path(post, path = "/api/v1/links", tag = "links", security(("bearer" = [])),
    request_body = LinkRequest,
    responses((status = 201, description = "`{\"id\", \"token\", \"expires_at\"}`: the token works for the minting key only, until it expires"),
        (status = 400, description = "`invalid_request`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`forbidden`", body = ErrorResponse), (status = 404, description = "`not_found`", body = ErrorResponse)))]
pub(crate) async fn mint_link(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let req: LinkRequest = json_body(&headers, &body)?;
    let link = s
        .core
        .mint_link(&p, &req.action, &req.subject, &req.purpose, req.minutes)
        .await?;
    Ok(created(json!(link)))
}

#[utoipa::path(get, path = "/api/v1/links/{token}", tag = "links", security(("bearer" = [])), params(("token" = String, Path)),
    responses((status = 200, description = "the action's result: the subject record (`subject.read`) or `{\"accesses\"}`"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden` (another key minted it)", body = ErrorResponse),
        (status = 404, description = "`not_found`", body = ErrorResponse), (status = 410, description = "`link_expired`", body = ErrorResponse)))]
pub(crate) async fn use_link(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(token): Path<String>,
) -> Result<Json<consentry_core::LinkResult>, ApiError> {
    Ok(Json(s.core.use_link(&p, &token).await?))
}

#[utoipa::path(post, path = "/api/v1/subjects/{id}/token", tag = "links", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 201, description = "`{\"token\"}`: the person's own token for `GET /api/v1/subjects/{id}/accesses`, replacing any earlier one"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden`", body = ErrorResponse), (status = 404, description = "`not_found`", body = ErrorResponse)))]
pub(crate) async fn subject_token(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let token = s.core.issue_subject_token(&p, &id).await?;
    Ok(created(json!({ "token": token })))
}
