//! A minimal HTTP/1.1 client: for the commands that talk to a running server (`consentry
//! audit`) and for the alert webhook. Plain `http://host:port`, one connection per request.
//! Over the network, terminate TLS in a proxy beside the receiver and point this at a plain
//! port it can reach, or (for the verifier) verify an export file.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header;
use zeroize::Zeroizing;

/// Where requests go: `http://host:port` and an optional path prefix.
#[derive(Clone, Debug)]
pub struct Target {
    authority: String,
    prefix: String,
}

impl Target {
    /// Parses `http://host:port[/prefix]`.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url.strip_prefix("http://").ok_or(
            "the URL must start with http:// (TLS: through a proxy beside the receiver, or verify an export file)",
        )?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err("the URL has no host".into());
        }
        Ok(Target {
            authority: authority.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// Sends one request: `method` to `path` (with its query) with `headers` and `body`;
    /// the status and the response body.
    pub async fn send(
        &self,
        method: hyper::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), String> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| format!("connect {}: {e}", self.authority))?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("http: {e}"))?;
        let conn = tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(header::HOST, &self.authority);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("http: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the response: {e}"))?
            .to_bytes();
        drop(sender);
        conn.abort();
        Ok((status, body))
    }
}

/// A server and the key to call it with, for synchronous callers (the CLI).
pub struct Server {
    target: Target,
    key: Zeroizing<String>,
    rt: tokio::runtime::Runtime,
}

impl Server {
    /// `url` is `http://host:port` (an optional path prefix is kept).
    pub fn new(url: &str, key: Zeroizing<String>) -> Result<Server, String> {
        let target = Target::parse(url)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        Ok(Server { target, key, rt })
    }

    /// POSTs `body` (of `content_type`) to `path`: the status and the body.
    pub fn post(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), String> {
        let auth = Zeroizing::new(format!("Bearer {}", self.key.as_str()));
        self.rt.block_on(self.target.send(
            hyper::Method::POST,
            path,
            &[
                (header::AUTHORIZATION.as_str(), auth.as_str()),
                (header::CONTENT_TYPE.as_str(), content_type),
            ],
            body,
        ))
    }

    /// GETs `path` (with its query): the status and the body.
    pub fn get(&self, path: &str) -> Result<(u16, Bytes), String> {
        let auth = Zeroizing::new(format!("Bearer {}", self.key.as_str()));
        self.rt.block_on(self.target.send(
            hyper::Method::GET,
            path,
            &[(header::AUTHORIZATION.as_str(), auth.as_str())],
            Vec::new(),
        ))
    }
}
