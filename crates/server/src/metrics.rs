//! Prometheus counters behind `GET /metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Prometheus counters. Labels carry routes, statuses and decisions only: never a subject id,
/// a key or anything about a face. Every label comes from a fixed set (methods outside the
/// standard ones count as `other`, paths that match no route as `unmatched`), so a client
/// cannot grow the label set.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, String, u16), u64>>,
    decisions: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

/// The method label: one of the standard methods, or `other`.
pub(crate) fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl Metrics {
    /// Counts a handled request; `route` is a route template or `unmatched`.
    pub(crate) fn request(&self, method: &'static str, route: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((method, route.to_string(), status)).or_default() += 1;
        }
    }

    /// Counts a decision of a kind (`verify`, `identify`, `face`, `card`, `pin`).
    pub(crate) fn decision(&self, kind: &'static str, allow: bool) {
        if let Ok(mut m) = self.decisions.lock() {
            *m.entry((kind, if allow { "allow" } else { "deny" }))
                .or_default() += 1;
        }
    }

    fn render(&self) -> String {
        let mut out = String::from(
            "# HELP consentry_requests_total HTTP requests by method, route and status.\n\
             # TYPE consentry_requests_total counter\n",
        );
        if let Ok(m) = self.requests.lock() {
            for ((method, route, status), n) in m.iter() {
                out.push_str(&format!(
                    "consentry_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}\n"
                ));
            }
        }
        out.push_str(
            "# HELP consentry_decisions_total Access and verification decisions.\n\
             # TYPE consentry_decisions_total counter\n",
        );
        if let Ok(m) = self.decisions.lock() {
            for ((kind, decision), n) in m.iter() {
                out.push_str(&format!(
                    "consentry_decisions_total{{kind=\"{kind}\",decision=\"{decision}\"}} {n}\n"
                ));
            }
        }
        out
    }
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}
