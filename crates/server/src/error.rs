//! [`ApiError`]: the one error type of the API and the only place an HTTP status is chosen.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use consentry_core::CoreError;
use consentry_types::{ErrorBody, ErrorCode, HasErrorCode};

/// `{"code", "message"}` with the code's HTTP status. Messages are generic for server-side
/// failures; details stay in the server's log.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    /// Seconds for `Retry-After`, where the code is one to retry.
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a message fit for the caller.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Tells the client when to try again (`Retry-After`, in seconds).
    pub(crate) fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let code = e.code();
        // Public messages come from the catalogue: a library's text (the image decoder's, the
        // database's, a panic's) never reaches a client. Only `Invalid`, whose text the core
        // writes itself about the request's own fields, is passed on.
        let message = match &e {
            CoreError::Invalid(m) if code.http_status() < 500 => m.clone(),
            _ => code.describe().to_string(),
        };
        if code.http_status() >= 500 {
            // Inside the request's span: the log line carries its request id.
            tracing::error!(%code, error = %e, "request failed");
        }
        // The engine queue frees up within a second or so: each job takes milliseconds.
        let retry_after = (code == ErrorCode::Overloaded).then_some(1);
        ApiError {
            code,
            message,
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            status,
            Json(ErrorBody {
                code: self.code,
                message: self.message,
            }),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

/// The error body every endpoint answers with (see the code catalogue in consentry-types).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorResponse {
    /// A stable snake_case code, e.g. `no_face`.
    pub code: String,
    /// A human-readable message.
    pub message: String,
}
