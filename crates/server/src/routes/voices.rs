//! Voice: `/api/v1/subjects/{id}/voices` (enrolment), `/api/v1/verify/voice` and the modality
//! policy (`/api/v1/modality/policy`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use consentry_core::{Modality, Probes, Purpose};
use serde::Deserialize;
use serde_json::json;

use crate::extract::{audio_body, json_body, Auth, Body, EngineRoom, Path, Query};
use crate::routes::decisions::{verify_answer, SubjectQuery};
use crate::routes::faces::{enrolled, PurposeQuery};
use crate::{ApiError, AppState, ErrorResponse};

#[utoipa::path(post, path = "/api/v1/subjects/{id}/voices", tag = "voices", security(("bearer" = [])),
    params(("id" = String, Path), ("purpose" = String, Query, description = "access or verification", pattern = "^(access|verification)$")),
    request_body(content((Vec<u8> = "audio/wav"), (Vec<u8> = "audio/flac"), (crate::extract::AudioUpload = "multipart/form-data")), description = "a WAV (PCM 8/16/24-bit or float) or FLAC recording, mono or stereo, 3 to 30 s, at most 8 MiB: the whole body, or the `audio` part of a multipart form"),
    responses((status = 201, description = "`{\"template_id\", \"subject_token\", \"checks\": [\"voice\"]}`: the person's own token at their first enrolment, null afterwards"),
        (status = 403, description = "`consent_required`", body = ErrorResponse),
        (status = 400, description = "`not_audio`", body = ErrorResponse),
        (status = 415, description = "`unsupported_audio`", body = ErrorResponse),
        (status = 422, description = "`audio_too_short` (under 3 s)", body = ErrorResponse),
        (status = 413, description = "`audio_too_long`, `payload_too_large`", body = ErrorResponse),
        (status = 503, description = "`model_unavailable`: this server runs without the voice model", body = ErrorResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
pub(crate) async fn enrol_voice(
    State(s): State<AppState>,
    _: EngineRoom,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<PurposeQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let purpose = Purpose::parse(q.purpose.as_deref().unwrap_or(""))?;
    let audio = audio_body(&headers, body).await?;
    let template = s.core.enrol_voice(&p, &id, purpose, audio).await?;
    enrolled(&s, &p, &id, &template, &["voice"]).await
}

#[utoipa::path(post, path = "/api/v1/verify/voice", tag = "decisions", security(("bearer" = [])), params(("subject" = String, Query)),
    request_body(content((Vec<u8> = "audio/wav"), (Vec<u8> = "audio/flac"), (crate::extract::AudioUpload = "multipart/form-data")), description = "a WAV or FLAC recording, 3 to 30 s"),
    responses((status = 200, description = "`{\"decision\": \"allow\"|\"deny\", \"checks\": [\"voice\"]}`, for a verification policy of `voice` or `face_or_voice`; an unknown subject and a non-match look the same, and no score is given"),
        (status = 400, description = "`modality_policy`: the tenant's verification policy needs the face too (send both to `/api/v1/verify` as multipart), or `not_audio`", body = ErrorResponse),
        (status = 403, description = "`liveness_required`: the verification purpose needs a liveness result, which is of a face", body = ErrorResponse),
        (status = 422, description = "`audio_too_short`", body = ErrorResponse),
        (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
pub(crate) async fn verify_voice(
    State(s): State<AppState>,
    _: EngineRoom,
    Auth(p): Auth,
    Query(q): Query<SubjectQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let subject = q.subject()?;
    let probes = Probes {
        image: None,
        audio: Some(audio_body(&headers, body).await?),
    };
    verify_answer(&s, &p, &subject, probes).await
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct ModalityRequest {
    /// `access` or `verification`.
    #[schema(pattern = "^(access|verification)$")]
    purpose: String,
    /// `face`, `voice`, `face_and_voice` or `face_or_voice` (access: `face` or
    /// `face_and_voice`).
    #[schema(pattern = "^(face|voice|face_and_voice|face_or_voice)$")]
    modality: String,
}

#[utoipa::path(put, path = "/api/v1/modality/policy", operation_id = "set_modality_policy", tag = "voices", security(("bearer" = [])),
    request_body = ModalityRequest,
    responses((status = 200, description = "`{\"purpose\", \"modality\"}`: decisions for that purpose now need those biometrics (`modality_policy` otherwise)"),
        (status = 400, description = "`invalid_request`: an unknown purpose or modality, or access with `voice` or `face_or_voice` (a voice alone does not identify one person among many)", body = ErrorResponse),
        (status = 403, description = "`forbidden` (admins only)", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
pub(crate) async fn set_policy(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let r: ModalityRequest = json_body(&headers, &body.0)?;
    let purpose = Purpose::parse(&r.purpose)?;
    let modality = Modality::parse(&r.modality)?;
    s.core.set_modality_policy(&p, purpose, modality).await?;
    Ok(Json(
        json!({ "purpose": purpose.as_str(), "modality": modality.as_str() }),
    ))
}

#[utoipa::path(get, path = "/api/v1/modality/policy", operation_id = "get_modality_policy", tag = "voices", security(("bearer" = [])),
    params(("purpose" = String, Query, description = "access or verification", pattern = "^(access|verification)$")),
    responses((status = 200, description = "`{\"purpose\", \"modality\"}`: what a decision for that purpose must carry (any key of the tenant may ask, so a kiosk knows what to capture)"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
pub(crate) async fn get_policy(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PurposeQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let purpose = Purpose::parse(q.purpose.as_deref().unwrap_or(""))?;
    let modality = s.core.modality_policy(&p, purpose).await?;
    Ok(Json(
        json!({ "purpose": purpose.as_str(), "modality": modality.as_str() }),
    ))
}
