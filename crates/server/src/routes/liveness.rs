//! `/api/v1/liveness/…`: a challenge, its answer (a burst of frames), and the tenant's policy.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use consentry_core::{LivenessFrame, Purpose};
use serde::Deserialize;

use crate::extract::{created, json_body, Auth, Body, EngineRoom, Path};
use crate::{ApiError, AppState, ErrorResponse};
use consentry_types::ErrorCode;

/// `{"subject"}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChallengeRequest {
    /// The subject the liveness result will be for.
    subject: String,
}

/// One frame: its time and the picture, as the person saw themselves (a mirror image).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FrameRequest {
    /// Milliseconds since the first frame (increasing).
    #[schema(minimum = 0, maximum = 60000)]
    #[serde(deserialize_with = "crate::extract::whole::u32")]
    t_ms: u32,
    /// The JPEG or PNG, base64.
    image: String,
}

/// `{"frames": [...]}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnswerRequest {
    /// 1 to 40 frames, a burst of at most 6 seconds.
    #[schema(min_items = 1, max_items = 40)]
    frames: Vec<FrameRequest>,
}

/// `{"purpose", "required"}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyRequest {
    /// `access` or `verification`.
    #[schema(pattern = "^(access|verification)$")]
    purpose: String,
    /// Whether enrolment and verification for it need a fresh liveness result.
    required: bool,
}

#[utoipa::path(post, path = "/api/v1/liveness/challenges", tag = "liveness", security(("bearer" = [])),
    request_body = ChallengeRequest,
    responses((status = 201, description = "`{\"nonce\", \"actions\", \"instructions\", \"deadline_seconds\", \"expires_at\"}`: two or three actions (blink, turn_left, turn_right, look_up) to do in order, answered once by this key within a minute"),
        (status = 400, description = "`invalid_request`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`forbidden`", body = ErrorResponse), (status = 404, description = "`not_found`", body = ErrorResponse)))]
pub(crate) async fn challenge(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let req: ChallengeRequest = json_body(&headers, &body)?;
    let c = s.core.liveness_challenge(&p, &req.subject).await?;
    Ok(created(serde_json::json!(c)))
}

#[utoipa::path(post, path = "/api/v1/liveness/challenges/{nonce}/answer", tag = "liveness", security(("bearer" = [])),
    params(("nonce" = String, Path)), request_body = AnswerRequest,
    responses((status = 200, description = "`{\"pass\", \"checks\": {\"actions\", \"same_face\", \"timing\", \"passive\"}, \"reasons\", \"token\", \"token_expires_at\"}`: on a pass, a token (two minutes, single use) for one enrolment or verification of this subject by this key, with this face (`X-Consentry-Liveness`)"),
        (status = 400, description = "`invalid_request`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`forbidden`", body = ErrorResponse), (status = 410, description = "`challenge_expired`: answered already, another key's, or too late", body = ErrorResponse),
        (status = 413, description = "`payload_too_large`, `image_too_large`", body = ErrorResponse), (status = 503, description = "`model_unavailable`", body = ErrorResponse)))]
pub(crate) async fn answer(
    State(s): State<AppState>,
    _: EngineRoom,
    Auth(p): Auth,
    Path(nonce): Path<String>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<consentry_core::LivenessResult>, ApiError> {
    let req: AnswerRequest = json_body(&headers, &body)?;
    let frames = req
        .frames
        .into_iter()
        .map(|f| {
            base64::engine::general_purpose::STANDARD
                .decode(f.image.as_bytes())
                .map(|image| LivenessFrame {
                    t_ms: f.t_ms,
                    image,
                })
                .map_err(|_| {
                    ApiError::new(ErrorCode::InvalidRequest, "a frame's image is not base64")
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(s.core.liveness_answer(&p, &nonce, frames).await?))
}

#[utoipa::path(put, path = "/api/v1/liveness/policy", operation_id = "set_liveness_policy", tag = "liveness", security(("bearer" = [])),
    request_body = PolicyRequest,
    responses((status = 204, description = "set: enrolment and verification for the purpose need (or no longer need) `X-Consentry-Liveness`"),
        (status = 400, description = "`invalid_request`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`forbidden`", body = ErrorResponse)))]
pub(crate) async fn set_policy(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let req: PolicyRequest = json_body(&headers, &body)?;
    let purpose = Purpose::parse(&req.purpose)?;
    if !purpose.is_biometric() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "liveness applies to access and verification",
        ));
    }
    s.core
        .set_liveness_policy(&p, purpose, req.required)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
