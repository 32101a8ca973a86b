//! `/api/v1/subjects/{id}/faces`: enrolment.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use consentry_core::Purpose;
use serde::Deserialize;
use serde_json::json;

use crate::extract::{created, image_body, Auth, Body, EngineRoom, Path, Query};
use crate::{ApiError, AppState, ErrorResponse};

#[derive(Deserialize)]
pub(crate) struct PurposeQuery {
    pub(crate) purpose: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/subjects/{id}/faces", tag = "faces", security(("bearer" = [])),
    params(("id" = String, Path), ("purpose" = String, Query, description = "access or verification", pattern = "^(access|verification)$")),
    request_body(content((Vec<u8> = "image/jpeg"), (crate::extract::ImageUpload = "multipart/form-data")), description = "a JPEG or PNG photo, at most 10 MiB: the whole body, or the `image` part of a multipart form"),
    responses((status = 201, description = "`{\"template_id\", \"subject_token\", \"checks\"}`: the person's own token (`st_…`, for `GET /api/v1/subjects/{id}/accesses`) at their first enrolment, null afterwards; `checks` is `[\"face\"]` or `[\"face\", \"liveness\"]`"), (status = 403, description = "`consent_required`, `liveness_required`", body = ErrorResponse),
        (status = 422, description = "`no_face`, `multiple_faces`, `face_too_small`, `too_blurry`, `face_turned`, ...", body = ErrorResponse),
        (status = 413, description = "`payload_too_large`, `image_too_large`", body = ErrorResponse), (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
pub(crate) async fn enrol_face(
    State(s): State<AppState>,
    _: EngineRoom,
    Auth(p): Auth,
    Path(id): Path<String>,
    Query(q): Query<PurposeQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let purpose = Purpose::parse(q.purpose.as_deref().unwrap_or(""))?;
    let image = image_body(&headers, body).await?;
    let (template, liveness) = s.core.enrol_face_checked(&p, &id, purpose, image).await?;
    let checks: &[&str] = if liveness {
        &["face", "liveness"]
    } else {
        &["face"]
    };
    enrolled(&s, &p, &id, &template, checks).await
}

/// `201` for an enrolment: the template, the person's own token at their first enrolment (null
/// afterwards), and the checks it rests on.
pub(crate) async fn enrolled(
    s: &AppState,
    p: &consentry_core::Principal,
    subject: &str,
    template: &str,
    checks: &[&str],
) -> Result<Response, ApiError> {
    let token = s.core.first_subject_token(p, subject).await?;
    Ok(created(
        json!({ "template_id": template, "subject_token": token, "checks": checks }),
    ))
}

#[utoipa::path(post, path = "/api/v1/quality", tag = "faces", security(("bearer" = [])),
    request_body(content((Vec<u8> = "image/jpeg"), (crate::extract::ImageUpload = "multipart/form-data")), description = "one camera frame, JPEG or PNG"),
    responses((status = 200, description = "`{\"code\": null|\"no_face\"|\"multiple_faces\"|\"face_too_small\"|\"face_cut_off\"|\"face_turned\"|\"too_blurry\"|\"low_confidence\", \"box\": [x, y, w, h]|null}`: what the enrolment quality gate says of the frame (`null`: it would pass), the face's box as fractions of the frame. For live framing hints; nothing is stored or logged"),
        (status = 401, description = "`unauthorized`", body = ErrorResponse)))]
pub(crate) async fn frame_check(
    State(s): State<AppState>,
    _: EngineRoom,
    Auth(p): Auth,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<consentry_core::FrameCheck>, ApiError> {
    let image = image_body(&headers, body).await?;
    Ok(axum::Json(s.core.frame_check(&p, image).await?))
}
