//! Around every request: the request id, one log line, the request counters.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;

use axum::response::IntoResponse;
use consentry_types::ErrorCode;

use crate::metrics::method_label;
use crate::{ApiError, AppState};

/// The request id header: taken from the caller when it is a plain token (so a gateway's id
/// carries through), generated otherwise, and returned on every response.
pub const REQUEST_ID: &str = "x-request-id";

/// The request's id, for the handlers (the audit log records it).
#[derive(Clone, Debug)]
pub(crate) struct RequestId(pub String);

fn request_id(headers: &HeaderMap) -> String {
    let given = headers.get(REQUEST_ID).and_then(|v| v.to_str().ok());
    match given {
        Some(id)
            if (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) =>
        {
            id.to_string()
        }
        _ => consentry_core::new_id(),
    }
}

/// The request id (header and log span), one log line with the route template, status and
/// duration, and the counters behind `/metrics`. Nothing of the body, the concrete path (it
/// holds ids) or the caller's key is logged.
pub(crate) async fn observe(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument;
    let method = method_label(req.method());
    // The route template (`/api/v1/subjects/{id}`), never the concrete path with its ids.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let id = request_id(req.headers());
    let mut req = req;
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", id = %id, method = %method, route = %route);
    let started = std::time::Instant::now();
    // The request's work runs as a task of its own, so that nothing stops it half-way: not a
    // caller that hangs up (which drops this future), not the time limit. A future dropped
    // while its database transaction is starting can leave the pooled connection inside a
    // transaction that nothing ends (sqlx's `begin` is not cancel-safe), after which every
    // write fails; and work cut between two steps would be half done. So the work always
    // runs to its end, and its transactions commit or roll back by themselves. A caller that
    // waits longer than the limit gets `request_timeout` while the work goes on: what it did,
    // if anything, is in the audit log.
    // The upload itself is held to the limit: a body still arriving when it is up fails to
    // read, so a caller trickling bytes cannot keep the work alive past it. (Nothing has been
    // written before a body is read.)
    let expired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let req = req.map(|body| {
        axum::body::Body::new(Deadline {
            body,
            end: Box::pin(tokio::time::sleep(s.timeout)),
            expired: expired.clone(),
        })
    });
    let work = tokio::spawn(next.run(req).instrument(span.clone()));
    let timed_out = || {
        ApiError::new(
            ErrorCode::RequestTimeout,
            ErrorCode::RequestTimeout.describe(),
        )
        .into_response()
    };
    let mut resp = match tokio::time::timeout(s.timeout, work).await {
        // Its upload ran out of time: the caller's answer is the time limit's, whatever the
        // handler made of the failed read.
        Ok(Ok(_)) if expired.load(std::sync::atomic::Ordering::SeqCst) => timed_out(),
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => {
            span.in_scope(|| tracing::error!(error = %e, "the request's work failed"));
            ApiError::new(ErrorCode::Internal, ErrorCode::Internal.describe()).into_response()
        }
        Err(_) => timed_out(),
    };
    let status = resp.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "handled"
        );
    });
    s.metrics.request(method, &route, status);
    if let Ok(v) = header::HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// A request body that fails once its deadline has passed.
struct Deadline {
    body: axum::body::Body,
    end: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// Set when the deadline cut the body short.
    expired: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl http_body::Body for Deadline {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::future::Future;
        if self.end.as_mut().poll(cx).is_ready() {
            self.expired
                .store(true, std::sync::atomic::Ordering::SeqCst);
            return std::task::Poll::Ready(Some(Err(axum::Error::new(
                "the request body was still arriving at the time limit",
            ))));
        }
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
