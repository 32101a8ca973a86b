//! Calling a Consentry server from the command line: which server and key, and answers turned
//! into the CLI's failures (a non-2xx answer becomes its error code and message).

use clap::Args;
use consentry_server::client::Server;
use consentry_types::{ErrorBody, ErrorCode};
use zeroize::Zeroizing;

use crate::Failure;

/// Which server, and the key to call it with.
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// The server, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "CONSENTRY_SERVER")]
    pub(crate) server: Option<String>,
    /// An API key of the tenant (its role must allow the call).
    #[arg(long, env = "CONSENTRY_API_KEY", hide_env_values = true)]
    pub(crate) key: Option<String>,
}

pub(crate) fn bad(message: impl Into<String>) -> Failure {
    Failure {
        code: ErrorCode::InvalidRequest,
        message: message.into(),
    }
}

pub(crate) fn unreachable(message: impl Into<String>) -> Failure {
    Failure {
        code: ErrorCode::StorageUnavailable,
        message: message.into(),
    }
}

/// A server and the key to call it with.
pub(crate) struct Remote(Server);

impl Remote {
    /// `--server` and `--key` (the key may be left out for public endpoints).
    pub(crate) fn open(a: &ServerArgs) -> Result<Remote, Failure> {
        Remote::open_with(a, true)
    }

    pub(crate) fn open_with(a: &ServerArgs, key_required: bool) -> Result<Remote, Failure> {
        let url = a
            .server
            .as_deref()
            .ok_or_else(|| bad("--server URL is required (or CONSENTRY_SERVER)"))?;
        let key = match (a.key.clone(), key_required) {
            (Some(k), _) => Zeroizing::new(k),
            (None, false) => Zeroizing::new(String::new()),
            (None, true) => return Err(bad("--key KEY is required (or CONSENTRY_API_KEY)")),
        };
        Server::new(url, key).map(Remote).map_err(bad)
    }

    fn answer(status: u16, body: &[u8]) -> Result<Vec<u8>, Failure> {
        if (200..300).contains(&status) {
            return Ok(body.to_vec());
        }
        Err(match serde_json::from_slice::<ErrorBody>(body) {
            Ok(e) => Failure {
                code: e.code,
                message: format!("the server answered {status}: {}", e.message),
            },
            Err(_) => unreachable(format!("the server answered {status}")),
        })
    }

    /// GETs a path.
    pub(crate) fn get(&self, path: &str) -> Result<Vec<u8>, Failure> {
        let (status, body) = self.0.get(path).map_err(unreachable)?;
        Remote::answer(status, &body)
    }

    /// POSTs a JSON body to a path.
    pub(crate) fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, Failure> {
        let (status, answer) = self
            .0
            .post(path, "application/json", body.to_string().into_bytes())
            .map_err(unreachable)?;
        serde_json::from_slice(&Remote::answer(status, &answer)?)
            .map_err(|e| unreachable(format!("{path}: not JSON: {e}")))
    }

    /// GETs a JSON document.
    pub(crate) fn json(&self, path: &str) -> Result<serde_json::Value, Failure> {
        serde_json::from_slice(&self.get(path)?)
            .map_err(|e| unreachable(format!("{path}: not JSON: {e}")))
    }
}
