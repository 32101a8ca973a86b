//! Decisions: `/api/v1/verify`, `/api/v1/identify`, `/api/v1/access/decide`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use consentry_core::Credential;
use consentry_types::ErrorCode;
use serde::Deserialize;
use serde_json::json;

use crate::extract::{
    content_type, is_audio_type, is_image_type, json_body, probes_body, Auth, Body, EngineRoom,
    Query,
};
use crate::routes::credentials::CredentialRequest;
use crate::{ApiError, AppState, ErrorResponse};

#[derive(Deserialize)]
pub(crate) struct SubjectQuery {
    subject: Option<String>,
}

impl SubjectQuery {
    /// The `?subject=` a 1:1 decision needs.
    pub(crate) fn subject(self) -> Result<String, ApiError> {
        self.subject
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidRequest, "?subject=ID is required"))
    }
}

pub(crate) fn decision(allow: bool) -> &'static str {
    if allow {
        "allow"
    } else {
        "deny"
    }
}

#[utoipa::path(post, path = "/api/v1/verify", tag = "decisions", security(("bearer" = [])), params(("subject" = String, Query)),
    request_body(content((Vec<u8> = "image/jpeg"), (crate::extract::ProbesUpload = "multipart/form-data")), description = "a JPEG or PNG photo (the whole body), or a multipart form with an `image` part, an `audio` part (WAV or FLAC) or both, as the verification purpose's modality policy says"),
    responses((status = 200, description = "`{\"decision\": \"allow\"|\"deny\", \"checks\"}`: the checks the decision rests on, of `face`, `voice` and `liveness`; an unknown subject and a non-match look the same, and no score is given to anyone"), (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 400, description = "`modality_policy`: the request does not carry what the tenant's verification policy needs (face, voice, both, or either)", body = ErrorResponse),
        (status = 403, description = "`liveness_required`: the tenant's policy needs a fresh liveness result of this face (`X-Consentry-Liveness`)", body = ErrorResponse)))]
pub(crate) async fn verify_face(
    State(s): State<AppState>,
    _: EngineRoom,
    Auth(p): Auth,
    Query(q): Query<SubjectQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let subject = q.subject()?;
    let probes = probes_body(&headers, body).await?;
    verify_answer(&s, &p, &subject, probes).await
}

/// A 1:1 decision as answered: allow or deny, and the checks it rests on (the face and/or the
/// voice, and a liveness result when the tenant's policy needed one).
pub(crate) async fn verify_answer(
    s: &AppState,
    p: &consentry_core::Principal,
    subject: &str,
    probes: consentry_core::Probes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let d = s.core.verify_with(p, subject, probes).await?;
    s.metrics.decision("verify", d.allow);
    Ok(Json(
        json!({ "decision": decision(d.allow), "checks": d.checks() }),
    ))
}

#[utoipa::path(post, path = "/api/v1/identify", tag = "decisions", security(("bearer" = [])),
    request_body(content((Vec<u8> = "image/jpeg"), (crate::extract::ProbesUpload = "multipart/form-data")), description = "a JPEG or PNG photo: the whole body, or the `image` part of a multipart form, with an `audio` part when the access policy is `face_and_voice`"),
    responses((status = 200, description = "`{\"decision\", \"subject\": id|null, \"checks\"}`; an unmatched face is dropped"), (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 400, description = "`modality_policy`", body = ErrorResponse)))]
pub(crate) async fn identify_face(
    State(s): State<AppState>,
    _: EngineRoom,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let probes = probes_body(&headers, body).await?;
    let checks = checks_of(&probes);
    let id = s.core.identify_with(&p, probes).await?;
    s.metrics.decision("identify", id.allow);
    Ok(Json(
        json!({ "decision": decision(id.allow), "subject": id.subject, "checks": checks }),
    ))
}

#[utoipa::path(post, path = "/api/v1/access/decide", tag = "decisions", security(("bearer" = [])),
    request_body(content((CredentialRequest = "application/json"), (Vec<u8> = "image/jpeg"), (crate::extract::ProbesUpload = "multipart/form-data")), description = "`{\"card\"}` or `{\"pin\"}` as JSON, or a face: a JPEG or PNG body, or the `image` part of a multipart form, with an `audio` part (WAV or FLAC) when the access policy is `face_and_voice`"),
    responses((status = 200, description = "`{\"decision\", \"subject\", \"checks\"}`, the same for face, card and PIN; `checks` says what ran (`face`, `voice`, `card`, `pin`)"), (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 400, description = "`modality_policy`: the request does not carry what the access policy needs", body = ErrorResponse)))]
/// The access decision from a face (and a voice, as the policy says), a card or a PIN (JSON):
/// one shape for all.
pub(crate) async fn decide_access(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ct = content_type(&headers);
    let (id, checks) = if ct.starts_with("image/")
        || ct.starts_with("audio/")
        || is_image_type(ct)
        || is_audio_type(ct)
        || ct.eq_ignore_ascii_case("multipart/form-data")
    {
        // A face needs the engine: refuse before reading the body when its queue is full.
        EngineRoom::check(&s)?;
        let probes = probes_body(&headers, body).await?;
        let checks = checks_of(&probes);
        let id = s.core.identify_with(&p, probes).await?;
        s.metrics.decision("face", id.allow);
        (id, checks)
    } else {
        let credential = json_body::<CredentialRequest>(&headers, &body.0)?.credential()?;
        let id = s.core.decide_credential(&p, &credential).await?;
        let kind = match credential {
            Credential::Card(_) => "card",
            Credential::Pin(_) => "pin",
        };
        s.metrics.decision(kind, id.allow);
        (id, vec![kind])
    };
    Ok(Json(
        json!({ "decision": decision(id.allow), "subject": id.subject, "checks": checks }),
    ))
}

/// The modalities a 1:N request carried (the policy refuses any other combination).
fn checks_of(probes: &consentry_core::Probes) -> Vec<&'static str> {
    let mut checks = Vec::new();
    if probes.image.is_some() {
        checks.push("face");
    }
    if probes.audio.is_some() {
        checks.push("voice");
    }
    checks
}
