//! Decisions: `/api/v1/verify`, `/api/v1/identify`, `/api/v1/access/decide`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use consentry_core::Credential;
use consentry_types::ErrorCode;
use serde::Deserialize;
use serde_json::json;

use crate::extract::{content_type, image_body, is_image_type, json_body, Auth, Body, Query};
use crate::routes::credentials::CredentialRequest;
use crate::{ApiError, AppState, ErrorResponse};

#[derive(Deserialize)]
pub(crate) struct SubjectQuery {
    subject: Option<String>,
}

fn decision(allow: bool) -> &'static str {
    if allow {
        "allow"
    } else {
        "deny"
    }
}

#[utoipa::path(post, path = "/api/v1/verify", tag = "decisions", security(("bearer" = [])), params(("subject" = String, Query)),
    request_body(content((Vec<u8> = "image/jpeg"), (crate::extract::ImageUpload = "multipart/form-data")), description = "a JPEG or PNG photo: the whole body, or the `image` part of a multipart form"),
    responses((status = 200, description = "`{\"decision\": \"allow\"|\"deny\", \"checks\": [\"face\"] or [\"face\", \"liveness\"]}`; an unknown subject and a non-match look the same, and no score is given to anyone"), (status = 401, description = "`unauthorized`", body = ErrorResponse),
        (status = 403, description = "`liveness_required`: the tenant's policy needs a fresh liveness result of this face (`X-Consentry-Liveness`)", body = ErrorResponse)))]
pub(crate) async fn verify_face(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<SubjectQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let subject = q
        .subject
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidRequest, "?subject=ID is required"))?;
    let image = image_body(&headers, body).await?;
    let d = s.core.verify(&p, &subject, image).await?;
    s.metrics.decision("verify", d.allow);
    // Which checks the decision rests on: the face, and a liveness result when the tenant's
    // policy needed one.
    let checks: &[&str] = if d.liveness {
        &["face", "liveness"]
    } else {
        &["face"]
    };
    Ok(Json(
        json!({ "decision": decision(d.allow), "checks": checks }),
    ))
}

#[utoipa::path(post, path = "/api/v1/identify", tag = "decisions", security(("bearer" = [])),
    request_body(content((Vec<u8> = "image/jpeg"), (crate::extract::ImageUpload = "multipart/form-data")), description = "a JPEG or PNG photo: the whole body, or the `image` part of a multipart form"),
    responses((status = 200, description = "`{\"decision\", \"subject\": id|null}`; an unmatched face is dropped"), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
pub(crate) async fn identify_face(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let image = image_body(&headers, body).await?;
    let id = s.core.identify(&p, image).await?;
    s.metrics.decision("identify", id.allow);
    Ok(Json(
        json!({ "decision": decision(id.allow), "subject": id.subject }),
    ))
}

#[utoipa::path(post, path = "/api/v1/access/decide", tag = "decisions", security(("bearer" = [])),
    request_body(content((CredentialRequest = "application/json"), (Vec<u8> = "image/jpeg"), (crate::extract::ImageUpload = "multipart/form-data")), description = "`{\"card\"}` or `{\"pin\"}` as JSON, or a face: a JPEG or PNG body, or the `image` part of a multipart form"),
    responses((status = 200, description = "`{\"decision\", \"subject\"}`, the same for face, card and PIN"), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
/// The access decision from a face (image body), a card or a PIN (JSON): one shape for all.
pub(crate) async fn decide_access(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ct = content_type(&headers);
    let id = if ct.starts_with("image/")
        || is_image_type(ct)
        || ct.eq_ignore_ascii_case("multipart/form-data")
    {
        let id = s
            .core
            .identify(&p, image_body(&headers, body).await?)
            .await?;
        s.metrics.decision("face", id.allow);
        id
    } else {
        let credential = json_body::<CredentialRequest>(&headers, &body.0)?.credential()?;
        let id = s.core.decide_credential(&p, &credential).await?;
        let kind = match credential {
            Credential::Card(_) => "card",
            Credential::Pin(_) => "pin",
        };
        s.metrics.decision(kind, id.allow);
        id
    };
    Ok(Json(
        json!({ "decision": decision(id.allow), "subject": id.subject }),
    ))
}
