//! The API contract, checked by independent tools against a live server (the `consentry`
//! binary on SQLite):
//!
//! - Schemathesis (`--checks all`, every phase, the stateful one following the document's
//!   links) must find nothing: every status and body each operation gives is the one
//!   `/openapi.json` declares, and every constraint it declares is the server's. Refusals the
//!   document cannot describe are listed, with their reasons, in
//!   `tests/contract/schemathesis.toml`.
//! - A client generated from `/openapi.json` by openapi-python-client runs the whole flow:
//!   subject, consent, enrolment, verification, identification, deletion.
//!
//! The tools come from the contract venv `python3 setup/fetch.py` makes (pinned in
//! `setup/requirements-contract.txt`). Without it the test says so and passes, unless
//! `CONSENTRY_REQUIRE_CONTRACT` is set (CI sets it). `CONSENTRY_CONTRACT_EXAMPLES` sets
//! Schemathesis's examples per operation (25 here; the long run in docs/security.md).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use consentry_testkit::Scratch;

mod common;
use common::{assets, bootstrap, Server, UNTHROTTLED};

fn venv() -> Option<PathBuf> {
    let bin = assets().parent()?.join("contract-venv/bin");
    if bin.join("schemathesis").exists() && bin.join("openapi-python-client").exists() {
        return Some(bin);
    }
    assert!(
        std::env::var_os("CONSENTRY_REQUIRE_CONTRACT").is_none(),
        "the contract tools are missing: run python3 setup/fetch.py"
    );
    eprintln!("skipped: the contract tools are missing (python3 setup/fetch.py installs them)");
    None
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A server for the tools, unthrottled: the rate limits and abuse rules would suspend the key
/// after a few hundred requests and end the run early.
fn server(scratch: &Scratch, name: &str) -> (Server, String) {
    let db = scratch.sqlite_url(name);
    let key_dir = scratch.key_dir(name);
    let admin = bootstrap(&db, &key_dir, "Contract");
    (Server::start_with(&db, &key_dir, UNTHROTTLED, &[]), admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing() {
    let Some(bin) = venv() else { return };
    let scratch = Scratch::new("cli_contract").await;
    let (server, admin) = server(&scratch, "schemathesis");
    let examples = std::env::var("CONSENTRY_CONTRACT_EXAMPLES").unwrap_or_else(|_| "25".into());
    let out = Command::new(bin.join("schemathesis"))
        .arg("--config-file")
        .arg(repo().join("tests/contract/schemathesis.toml"))
        .args(["run", &format!("{}/openapi.json", server.url())])
        .args(["-H", &format!("Authorization: Bearer {admin}")])
        .args([
            "--checks",
            "all",
            "--max-examples",
            &examples,
            // One worker: CPython 3.11's AST builder keeps its recursion depth in state the
            // interpreter's threads share, and a garbage collection can switch threads while it
            // runs, so Hypothesis parsing lambda sources on two workers can fail with "AST
            // constructor recursion depth mismatch" (python/cpython#106905): an error of the
            // tool, not of the API.
            "--workers",
            "1",
        ])
        .args(["--seed", "1", "--no-color"])
        // A generation health check, not a check of the API: multipart bodies whose extra
        // parts (the schema allows them; the server ignores them) cannot all be encoded make
        // Hypothesis discard many examples of the upload operations.
        .args(["--suppress-health-check", "filter_too_much"])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(&scratch.dir)
        .output()
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "{}",
        text.lines()
            .rev()
            .take(12)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A run whose key stopped working tests nothing past that point.
    assert!(!text.contains("Authentication failed"), "{text}");
    for phase in ["Coverage", "Fuzzing", "Stateful"] {
        assert!(
            text.contains(&format!("✅ {phase}")),
            "{phase} did not pass:\n{text}"
        );
    }
    drop(server);
    scratch.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_client_runs_the_whole_flow() {
    let Some(bin) = venv() else { return };
    let scratch = Scratch::new("cli_client").await;
    let (server, admin) = server(&scratch, "client");
    let device = server.device_key(&admin);

    let (status, document) = server.call("GET", "/openapi.json", &admin, None);
    assert_eq!(status, 200);
    let spec = scratch.dir.join("openapi.json");
    std::fs::write(&spec, document.to_string()).unwrap();
    let generated = scratch.dir.join("generated");
    let out = Command::new(bin.join("openapi-python-client"))
        .args(["generate", "--meta", "none", "--path"])
        .arg(&spec)
        .arg("--output-path")
        .arg(generated.join("consentry_client"))
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .expect("run openapi-python-client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every operation became a function: none was skipped for its content type.
    for op in [
        "enrol_face",
        "verify_face",
        "identify_face",
        "decide_access",
        "enrol_voice",
    ] {
        let found = std::fs::read_dir(generated.join("consentry_client/api"))
            .unwrap()
            .flatten()
            .any(|tag| tag.path().join(format!("{op}.py")).exists());
        assert!(found, "the generated client has no {op}");
    }

    let photos = assets().join("photos");
    let out = Command::new(bin.join("python"))
        .arg(repo().join("tests/contract/client_flow.py"))
        .arg(&generated)
        .args([&server.url(), &admin, &device])
        .args(["obama.jpg", "obama2.jpg", "biden.jpg"].map(|p| photos.join(p)))
        .output()
        .expect("run the generated client");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    drop(server);
    scratch.finish().await;
}
