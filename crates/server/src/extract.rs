//! Extractors: the caller's key, bodies, path and query parameters. Every rejection is an
//! [`ApiError`] with a catalogue code, never axum's plain-text body.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use consentry_core::Principal;
use consentry_types::ErrorCode;

use crate::observe::RequestId;
use crate::{ApiError, AppState, MAX_IMAGE_BYTES};

/// The header in which a caller states why it reads a record (recorded in the audit log and
/// shown to the person).
pub const PURPOSE_HEADER: &str = "x-consentry-purpose";

/// Room in the face and voice engines' queue, checked before anything else of a request that
/// would run them (its key, its body): under overload a refusal (`overloaded`, 503,
/// `Retry-After`) then costs no database round trip and no body read (docs/benchmarks.md,
/// "Serving under overload", for what a flood of refusals still costs). The engine slot itself
/// is still taken, and the bound enforced, when the work starts.
pub struct EngineRoom;

impl FromRequestParts<AppState> for EngineRoom {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        EngineRoom::check(state)
    }
}

impl EngineRoom {
    /// The same check, for a handler that needs the engines only for some bodies.
    pub(crate) fn check(state: &AppState) -> Result<Self, ApiError> {
        if state.core.engine_has_room() {
            Ok(EngineRoom)
        } else {
            Err(consentry_core::CoreError::Overloaded.into())
        }
    }
}

/// The authenticated caller, from `Authorization: Bearer KEY`, with the request's id and the
/// purpose it stated (`X-Consentry-Purpose`).
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // Without a Bearer key: the web UI's session cookie (a kiosk's script calling the
        // API), which must carry the session's CSRF token on anything but a read.
        let session_key;
        let key = match bearer {
            Some(k) => k,
            None => {
                let session = crate::ui::cookie(&parts.headers, crate::ui::SESSION_COOKIE)
                    .and_then(|id| state.ui.get(id));
                match session {
                    Some((crate::ui::Who::Key(k), csrf)) => {
                        if !crate::ui::api_csrf_ok(&parts.method, &parts.headers, &csrf) {
                            return Err(ApiError::new(
                                ErrorCode::Forbidden,
                                "a call with the session cookie needs its X-CSRF-Token",
                            ));
                        }
                        session_key = k;
                        session_key.as_str()
                    }
                    _ => {
                        return Err(ApiError::new(
                            ErrorCode::Unauthorized,
                            "missing Authorization: Bearer KEY",
                        ))
                    }
                }
            }
        };
        let network = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| consentry_core::network_of(c.0.ip()));
        let principal = state
            .core
            .authenticate_request(key.trim(), network.as_deref())
            .await?;
        if let Err(seconds) = state.limiter.take(&principal.key, principal.role) {
            return Err(
                ApiError::new(ErrorCode::RateLimited, ErrorCode::RateLimited.describe())
                    .retry_after(seconds),
            );
        }
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map_or_else(consentry_core::new_id, |r| r.0.clone());
        let purpose = match parts.headers.get(PURPOSE_HEADER) {
            None => None,
            Some(v) => Some(v.to_str().map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    "X-Consentry-Purpose must be printable text",
                )
            })?),
        };
        // A liveness token (`X-Consentry-Liveness`), checked where the tenant's policy needs one.
        let liveness = parts
            .headers
            .get("x-consentry-liveness")
            .and_then(|v| v.to_str().ok());
        Ok(Auth(
            principal
                .with_request_id(&request_id)
                .with_purpose(purpose)?
                .with_liveness(liveness),
        ))
    }
}

/// Path parameters; a malformed path is `invalid_request`.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "malformed path parameter"))
    }
}

/// Query parameters; a malformed query string is `invalid_request`.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(v)| Query(v))
            .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "malformed query string"))
    }
}

/// The raw request body, with body-limit and read failures as [`ApiError`]s.
pub struct Body(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let too_large = || {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the body is larger than {MAX_IMAGE_BYTES} bytes"),
            )
        };
        // A declared length over the limit is refused before a byte of the body is awaited, so
        // a client cannot hold the connection open by promising gigabytes.
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_IMAGE_BYTES as u64) {
            return Err(too_large());
        }
        match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => Ok(Body(b)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(too_large()),
            Err(_) => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "the request body could not be read",
            )),
        }
    }
}

/// `201 Created` with a JSON body.
pub(crate) fn created(body: serde_json::Value) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

/// The request's `Content-Type` without parameters, or "".
pub(crate) fn content_type(headers: &HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map_or("", str::trim)
}

/// Content types an image body may come with. Many clients send `image/jpg` or
/// `application/octet-stream`; the type only has to say "an image file", the bytes' own
/// signature decides (the decoder refuses anything that is not JPEG or PNG: `not_an_image`,
/// `unsupported_format`).
pub(crate) fn is_image_type(content_type: &str) -> bool {
    matches!(
        content_type.to_ascii_lowercase().as_str(),
        "image/jpeg" | "image/jpg" | "image/pjpeg" | "image/png" | "application/octet-stream"
    )
}

/// An image body: the whole body (`image/jpeg`, `image/png`, `application/octet-stream`), or
/// the part named `image` (or `file`) of a `multipart/form-data` body, the upload convention of
/// most clients and generators. The router's body limit applies to the whole request either
/// way; the bytes' signature decides whether it is an image.
pub(crate) async fn image_body(headers: &HeaderMap, Body(body): Body) -> Result<Vec<u8>, ApiError> {
    let kind = content_type(headers);
    if kind.eq_ignore_ascii_case("multipart/form-data") {
        return multipart_image(headers, body).await;
    }
    if !is_image_type(kind) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedFormat,
            "send the image as image/jpeg, image/png or application/octet-stream, or as the \
             `image` part of multipart/form-data",
        ));
    }
    Ok(body.to_vec())
}

/// The most parts a multipart upload may have.
const MAX_PARTS: usize = 8;

/// The `image` (or `file`) and `audio` parts of a multipart body; at most [`MAX_PARTS`] parts
/// are read, and one part of each kind.
async fn multipart_parts(
    headers: &HeaderMap,
    body: axum::body::Bytes,
) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), ApiError> {
    let bad = |m: &'static str| ApiError::new(ErrorCode::InvalidRequest, m);
    let raw = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary =
        multer::parse_boundary(raw).map_err(|_| bad("a multipart body needs its boundary"))?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let (mut image, mut audio) = (None, None);
    for _ in 0..MAX_PARTS {
        let Some(field) = parts
            .next_field()
            .await
            .map_err(|_| bad("malformed multipart body"))?
        else {
            break;
        };
        let slot = match field.name() {
            Some("image" | "file") => &mut image,
            Some("audio") => &mut audio,
            _ => continue,
        };
        if slot.is_some() {
            return Err(bad(
                "a multipart upload has one image part and one audio part",
            ));
        }
        *slot = Some(
            field
                .bytes()
                .await
                .map(|b| b.to_vec())
                .map_err(|_| bad("malformed multipart body"))?,
        );
    }
    Ok((image, audio))
}

async fn multipart_image(
    headers: &HeaderMap,
    body: axum::body::Bytes,
) -> Result<Vec<u8>, ApiError> {
    multipart_parts(headers, body).await?.0.ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            "a multipart upload needs a part named `image`",
        )
    })
}

/// Content types an audio body may come with; the bytes' own signature decides (WAV or FLAC,
/// else `not_audio`).
pub(crate) fn is_audio_type(content_type: &str) -> bool {
    matches!(
        content_type.to_ascii_lowercase().as_str(),
        "audio/wav"
            | "audio/x-wav"
            | "audio/wave"
            | "audio/vnd.wave"
            | "audio/flac"
            | "audio/x-flac"
            | "application/octet-stream"
    )
}

/// An audio body: the whole body (`audio/wav`, `audio/flac`, `application/octet-stream`), or
/// the part named `audio` of a `multipart/form-data` body.
pub(crate) async fn audio_body(headers: &HeaderMap, Body(body): Body) -> Result<Vec<u8>, ApiError> {
    let kind = content_type(headers);
    if kind.eq_ignore_ascii_case("multipart/form-data") {
        return multipart_parts(headers, body).await?.1.ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "a multipart upload needs a part named `audio`",
            )
        });
    }
    if !is_audio_type(kind) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedAudio,
            "send the recording as audio/wav, audio/flac or application/octet-stream, or as the \
             `audio` part of multipart/form-data",
        ));
    }
    Ok(body.to_vec())
}

/// What a decision was given: a photo body, a recording body (an audio type), or a multipart
/// form with an `image` part, an `audio` part or both.
pub(crate) async fn probes_body(
    headers: &HeaderMap,
    body: Body,
) -> Result<consentry_core::Probes, ApiError> {
    let kind = content_type(headers).to_ascii_lowercase();
    if kind == "multipart/form-data" {
        let (image, audio) = multipart_parts(headers, body.0).await?;
        if image.is_none() && audio.is_none() {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "a multipart upload needs a part named `image` or `audio`",
            ));
        }
        return Ok(consentry_core::Probes { image, audio });
    }
    if kind.starts_with("audio/") {
        return Ok(consentry_core::Probes {
            image: None,
            audio: Some(audio_body(headers, body).await?),
        });
    }
    Ok(consentry_core::Probes {
        image: Some(image_body(headers, body).await?),
        audio: None,
    })
}

/// The OpenAPI schema of a multipart image upload.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ImageUpload {
    /// The JPEG or PNG file.
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
}

/// The OpenAPI schema of a multipart audio upload.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct AudioUpload {
    /// The WAV or FLAC recording.
    #[schema(value_type = String, format = Binary)]
    audio: Vec<u8>,
}

/// The OpenAPI schema of a decision's multipart upload: a photo, a recording, or both, as the
/// purpose's modality policy says.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ProbesUpload {
    /// The JPEG or PNG photo.
    #[schema(value_type = Option<String>, format = Binary)]
    image: Option<Vec<u8>>,
    /// The WAV or FLAC recording.
    #[schema(value_type = Option<String>, format = Binary)]
    audio: Option<Vec<u8>>,
}

/// JSON body with malformed input mapped to `invalid_request`.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    if content_type(headers) != "application/json" {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "send JSON with Content-Type: application/json",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("malformed JSON: {e}")))
}

/// Integer fields of JSON bodies that also take a number with a zero fraction (`30.0`): JSON
/// Schema's `integer` includes them, and clients that write every number as a float send them.
/// Anything else (a fraction, out of range) is refused as `invalid_request` like any malformed
/// body.
pub(crate) mod whole {
    use serde::{de::Error, Deserialize, Deserializer};

    fn from<E: Error>(n: serde_json::Number) -> Result<i64, E> {
        if let Some(i) = n.as_i64() {
            return Ok(i);
        }
        match n.as_f64() {
            // Below 2^63 in magnitude, so the cast is exact.
            Some(f) if f.fract() == 0.0 && f.abs() < 9.223_372_036_854_775e18 => Ok(f as i64),
            _ => Err(E::custom(format!("{n} is not a whole number in range"))),
        }
    }

    pub(crate) fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        from(serde_json::Number::deserialize(d)?)
    }

    pub(crate) fn option_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Option::<serde_json::Number>::deserialize(d)?
            .map(from)
            .transpose()
    }

    pub(crate) fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let n = from(serde_json::Number::deserialize(d)?)?;
        u32::try_from(n).map_err(|_| D::Error::custom(format!("{n} is out of range")))
    }

    #[cfg(test)]
    mod tests {
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[serde(deserialize_with = "super::i64")]
            a: i64,
            #[serde(default, deserialize_with = "super::option_i64")]
            b: Option<i64>,
            #[serde(default, deserialize_with = "super::u32")]
            c: u32,
        }

        #[test]
        fn whole_floats_are_integers_and_nothing_else_is() {
            let t: T = serde_json::from_str(r#"{"a": 30.0, "b": -2, "c": 7.0}"#).unwrap();
            assert_eq!((t.a, t.b, t.c), (30, Some(-2), 7));
            let t: T = serde_json::from_str(r#"{"a": 1, "b": null}"#).unwrap();
            assert_eq!((t.a, t.b, t.c), (1, None, 0));
            for bad in [
                r#"{"a": 30.5}"#,
                r#"{"a": 1e300}"#,
                r#"{"a": 9223372036854775808}"#,
                r#"{"a": "30"}"#,
                r#"{"a": 1, "c": -1}"#,
                r#"{"a": 1, "c": 4294967296.0}"#,
            ] {
                assert!(serde_json::from_str::<T>(bad).is_err(), "{bad}");
            }
        }
    }
}
