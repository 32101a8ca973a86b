//! What the command-line tests share: the `consentry` binary, a server it runs, a tenant.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub fn assets() -> PathBuf {
    match std::env::var_os("CONSENTRY_ASSETS") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/consentry/assets")
        }
    }
}

pub fn consentry(args: &[&str]) -> Output {
    consentry_env(args, &[])
}

/// `consentry` with these environment variables set.
pub fn consentry_env(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(args)
        .env("CONSENTRY_ASSETS", assets())
        .env_remove("CONSENTRY_ROOT_KEY")
        .envs(envs.iter().copied())
        .output()
        .expect("run consentry")
}

/// `serve` flags for tests that send hundreds of requests with one key in seconds: rate limits
/// and the abuse rules (which have tests of their own) raised out of the way.
pub const UNTHROTTLED: &[&str] = &[
    "--rate-limit",
    "admin=100000/1000000",
    "--rate-limit",
    "device=100000/1000000",
    "--burst-floor",
    "100000000",
    "--distinct-reads-floor",
    "100000000",
];

/// A running `consentry serve`, killed when dropped.
pub struct Server {
    child: Child,
    pub addr: String,
    /// What it printed before it listened (the models, the CPU, the demo key).
    pub banner: Vec<String>,
}

impl Server {
    pub fn start(db: &str, key_file: &Path) -> Server {
        Server::start_with(db, key_file, &[], &[])
    }

    /// A server with more arguments and environment variables.
    pub fn start_with(db: &str, key_file: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
        Server::start_logging(db, key_file, args, envs, Stdio::null())
    }

    /// A server whose standard error (its log) goes to `stderr`.
    pub fn start_logging(
        db: &str,
        key_file: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        stderr: Stdio,
    ) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_consentry"))
            .args([
                "serve",
                "--db",
                db,
                "--listen",
                "127.0.0.1:0",
                "--log",
                "off",
            ])
            .arg("--key-dir")
            .arg(key_file)
            .args(args)
            .envs(envs.iter().copied())
            .env("CONSENTRY_ASSETS", assets())
            .env_remove("CONSENTRY_ROOT_KEY")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start consentry serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        let addr = loop {
            let line = lines
                .next()
                .expect("the server exited before listening")
                .unwrap();
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
            banner.push(line);
        };
        Server {
            child,
            addr,
            banner,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process's resident memory, from `/proc`, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new device key (site `gate-1`) from an admin key.
    pub fn device_key(&self, admin: &str) -> String {
        let (status, v) = self.call_json(
            "POST",
            "/api/v1/keys",
            admin,
            r#"{"role":"device","site":"gate-1"}"#,
        );
        assert_eq!(status, 201, "{v}");
        v["key"].as_str().unwrap().to_string()
    }

    /// One request; the status and the JSON body (Null when empty or not JSON).
    pub fn call(&self, method: &str, path: &str, key: &str, purpose: Option<&str>) -> (u16, Value) {
        let purpose = purpose.map_or(String::new(), |p| format!("X-Consentry-Purpose: {p}\r\n"));
        self.send(method, path, key, &purpose, b"")
    }

    /// One request with a JSON body.
    pub fn call_json(&self, method: &str, path: &str, key: &str, body: &str) -> (u16, Value) {
        self.send(
            method,
            path,
            key,
            "Content-Type: application/json\r\n",
            body.as_bytes(),
        )
    }

    /// A POST of a JPEG photo.
    pub fn post_jpeg(&self, path: &str, key: &str, photo: &[u8]) -> (u16, Value) {
        self.send("POST", path, key, "Content-Type: image/jpeg\r\n", photo)
    }

    fn send(&self, method: &str, path: &str, key: &str, extra: &str, body: &[u8]) -> (u16, Value) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let status = raw
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap();
        let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

impl Server {
    /// SIGKILL, and waits for the process to go: no shutdown, no drain, no flush.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `consentry audit ARGS --server URL --key KEY --json`: its exit code and JSON output.
pub fn audit(args: &[&str], server: &Server, key: &str) -> (i32, Value) {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    let url = server.url();
    all.extend_from_slice(&["--server", &url, "--key", key, "--json"]);
    let out = consentry(&all);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap(), v)
}

pub fn bootstrap(db: &str, key_file: &Path, tenant: &str) -> String {
    let out = consentry(&[
        "admin",
        "bootstrap",
        "--db",
        db,
        "--key-dir",
        key_file.to_str().unwrap(),
        "--tenant",
        tenant,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["admin_key"].as_str().unwrap().to_string()
}
