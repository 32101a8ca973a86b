//! `/api/v1/subjects`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde_json::json;

use crate::extract::{created, Auth, Path};
use crate::{ApiError, AppState, ErrorResponse};

#[utoipa::path(post, path = "/api/v1/subjects", tag = "subjects", security(("bearer" = [])),
    responses((status = 201, description = "`{\"id\"}`"), (status = 401, description = "`unauthorized`", body = ErrorResponse), (status = 403, description = "`forbidden`", body = ErrorResponse)))]
pub(crate) async fn create_subject(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Response, ApiError> {
    let id = s.core.create_subject(&p).await?;
    Ok(created(json!({ "id": id })))
}

#[utoipa::path(delete, path = "/api/v1/subjects/{id}", tag = "subjects", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204, description = "deleted; its data key destroyed"), (status = 404, description = "`not_found`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
pub(crate) async fn delete_subject(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.core.delete_subject(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/subjects/{id}", tag = "subjects", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 200, description = "consents and template counts (never template bytes)"), (status = 404, description = "`not_found`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
pub(crate) async fn show_subject(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<consentry_core::SubjectView>, ApiError> {
    Ok(Json(s.core.subject(&p, &id).await?))
}
