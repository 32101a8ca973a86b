//! The alert webhook: each suspension is POSTed as JSON to the configured URL, signed, with
//! retries.
//!
//! Headers: `X-Consentry-Timestamp` (Unix seconds) and `X-Consentry-Signature:
//! sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`, so the receiver can check both
//! origin and freshness. A delivery that gets no 2xx is retried after 1, 2, 4, 8 and 16 s, then
//! given up on (and logged); the suspension itself is in the audit log whatever happens.

use consentry_core::Alert;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::client::Target;

/// Where alerts go.
#[derive(Clone)]
pub struct Webhook {
    /// The receiver.
    pub target: Target,
    /// The shared signing secret.
    pub secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("target", &self.target)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The signature header's value for `body` sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Delivers alerts from `rx` until the channel closes.
pub async fn deliver(
    hook: Webhook,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Alert>,
    first_retry: std::time::Duration,
) {
    while let Some(alert) = rx.recv().await {
        let body = serde_json::to_vec(&alert).unwrap_or_default();
        let mut wait = first_retry;
        for attempt in 1..=6 {
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .to_string();
            let sig = signature(&hook.secret, &ts, &body);
            let headers = [
                ("content-type", "application/json"),
                ("x-consentry-timestamp", ts.as_str()),
                ("x-consentry-signature", sig.as_str()),
            ];
            match hook
                .target
                .send(hyper::Method::POST, "", &headers, body.clone())
                .await
            {
                Ok((status, _)) if (200..300).contains(&status) => break,
                outcome => {
                    let why = match outcome {
                        Ok((status, _)) => format!("status {status}"),
                        Err(e) => e,
                    };
                    if attempt == 6 {
                        tracing::error!(rule = alert.rule, %why, "alert webhook: giving up");
                        break;
                    }
                    tracing::warn!(rule = alert.rule, attempt, %why, "alert webhook: retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
    }
}

/// Without a webhook: each alert is a warning in the server's log.
pub async fn log_only(mut rx: tokio::sync::mpsc::UnboundedReceiver<Alert>) {
    while let Some(a) = rx.recv().await {
        tracing::warn!(
            rule = a.rule,
            role = a.role,
            audit_index = a.audit_index,
            "key suspended"
        );
    }
}
