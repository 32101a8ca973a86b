//! A minimal HTTP/1.1 GET client for the commands that talk to a running server (`consentry
//! audit`): plain `http://host:port`, one connection per request. Over the network, put the
//! server behind a TLS proxy and run the verifier where the plain port is reachable, or verify
//! an export file.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header;
use zeroize::Zeroizing;

/// A server and the key to call it with.
pub struct Server {
    authority: String,
    prefix: String,
    key: Zeroizing<String>,
    rt: tokio::runtime::Runtime,
}

impl Server {
    /// `url` is `http://host:port` (an optional path prefix is kept).
    pub fn new(url: &str, key: Zeroizing<String>) -> Result<Server, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or("the server URL must start with http:// (TLS: verify through a local port or from an export file)")?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err("the server URL has no host".into());
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        Ok(Server {
            authority: authority.to_string(),
            prefix: prefix.to_string(),
            key,
            rt,
        })
    }

    /// GETs `path` (with its query): the status and the body.
    pub fn get(&self, path: &str) -> Result<(u16, Bytes), String> {
        self.rt.block_on(self.fetch(path))
    }

    async fn fetch(&self, path: &str) -> Result<(u16, Bytes), String> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| format!("connect {}: {e}", self.authority))?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("http: {e}"))?;
        let conn = tokio::spawn(conn);
        let req = hyper::Request::get(format!("{}{path}", self.prefix))
            .header(header::HOST, &self.authority)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.key.as_str()),
            )
            .body(Empty::<Bytes>::new())
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
