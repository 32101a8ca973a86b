//! `/api/v1/subjects/{id}/consents`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use consentry_core::Purpose;
use serde::Deserialize;
use serde_json::json;

use crate::extract::{created, json_body, Auth, Body, Path};
use crate::{ApiError, AppState, ErrorResponse};

#[utoipa::path(delete, path = "/api/v1/subjects/{id}/consents/{cid}", tag = "consents", security(("bearer" = [])),
    params(("id" = String, Path), ("cid" = String, Path)),
    responses((status = 204, description = "withdrawn; the last consent for a purpose deletes its templates (for `pass`: revokes the live passes)"), (status = 404, description = "`not_found`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
pub(crate) async fn withdraw_consent(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, cid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.core.withdraw_consent(&p, &id, &cid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"purpose", "retention_days"}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsentRequest {
    /// `access` (1:N at a gate), `verification` (1:1) or `pass` (QR passes).
    #[schema(pattern = "^(access|verification|pass)$")]
    purpose: String,
    /// Days the data is kept (1 to 1095).
    #[schema(minimum = 1, maximum = 1095)]
    #[serde(deserialize_with = "crate::extract::whole::i64")]
    retention_days: i64,
}

#[utoipa::path(post, path = "/api/v1/subjects/{id}/consents", tag = "consents", security(("bearer" = [])), params(("id" = String, Path)),
    request_body = ConsentRequest,
    responses((status = 201, description = "`{\"consent_id\", \"receipt\"}` with an Ed25519-signed receipt"), (status = 400, description = "`invalid_request`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
pub(crate) async fn grant_consent(
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
