//! `/api/v1/subjects/{id}/credentials`: cards and PINs.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use consentry_core::Credential;
use consentry_types::ErrorCode;
use serde::Deserialize;
use serde_json::json;

use crate::extract::{created, json_body, Auth, Body, Path};
use crate::{ApiError, AppState, ErrorResponse};

/// `{"card"}` or `{"pin"}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CredentialRequest {
    /// A card number as read from the card: not blank, at most 128 bytes.
    #[schema(min_length = 1, max_length = 128, pattern = "\\S")]
    card: Option<String>,
    /// 6 to 12 digits.
    #[schema(pattern = "^[0-9]{6,12}$")]
    pin: Option<String>,
}

impl CredentialRequest {
    pub(crate) fn credential(self) -> Result<Credential, ApiError> {
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
pub(crate) async fn add_credential(
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
