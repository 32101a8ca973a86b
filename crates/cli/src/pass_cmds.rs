//! `consentry pass`: issue a pass through a server, save the trust and revocation lists, and
//! verify a pass offline (its text, or a photo of its QR code).
//!
//! Exit status of `verify`: 0 for a valid pass; 10 malformed, 11 bad signature, 12 unknown key,
//! 13 expired, 14 not yet valid, 15 revoked, 16 stale revocation list, 17 another verifier's;
//! 2 when the verification could not be carried out (a missing or bad trust list, say).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use consentry_pass::{qr, Check, PassError, RevocationList, TrustList};
use consentry_types::{ErrorCode, HasErrorCode};
use serde_json::json;

use crate::remote::{bad, Remote, ServerArgs};
use crate::Failure;

/// `consentry pass`.
#[derive(Subcommand)]
pub enum PassCommand {
    /// Issue a pass to a subject (needs their consent for purpose `pass`).
    Issue(IssueArgs),
    /// Save an issuer's trust list (JWK Set) for offline verification.
    Trust(ListArgs),
    /// Save an issuer's signed revocation list.
    Revocations(ListArgs),
    /// Verify a pass offline: its text, a file holding it, or a PNG/JPEG photo of its QR code.
    Verify(VerifyArgs),
}

impl PassCommand {
    /// Whether the command prints JSON.
    pub fn json(&self) -> bool {
        match self {
            PassCommand::Issue(a) => a.json,
            PassCommand::Trust(_) | PassCommand::Revocations(_) => false,
            PassCommand::Verify(a) => a.json,
        }
    }
}

/// `consentry pass issue`.
#[derive(Args)]
pub struct IssueArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The subject's id.
    #[arg(long)]
    subject: String,
    /// The permission, e.g. site-12.
    #[arg(long)]
    access: String,
    /// The venue or site that will check it (default: the access value).
    #[arg(long)]
    verifier: Option<String>,
    /// Days of validity (default 30, at most 365).
    #[arg(long)]
    valid_days: Option<i64>,
    /// EdDSA (default) or ES256, for verifiers that cannot check EdDSA.
    #[arg(long)]
    alg: Option<String>,
    /// Also write the QR code here (.png or .svg).
    #[arg(long)]
    qr: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `consentry pass trust` / `revocations`.
#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The issuing tenant's id.
    #[arg(long)]
    tenant: String,
    /// The revocation list's signature algorithm: EdDSA (default) or ES256.
    #[arg(long)]
    alg: Option<String>,
    /// Where to write the document.
    #[arg(long)]
    out: PathBuf,
}

/// `consentry pass verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// The pass (`CS1:…`), a file holding it, or a PNG/JPEG photo of its QR code.
    pass: String,
    /// The issuer's trust list (`consentry pass trust --out`).
    #[arg(long)]
    trust: PathBuf,
    /// A signed revocation list (`consentry pass revocations --out`); without it revocation is
    /// not checked, and the output says so.
    #[arg(long)]
    revocations: Option<PathBuf>,
    /// The oldest revocation list accepted, in hours.
    #[arg(long, default_value_t = 24)]
    max_list_age_hours: i64,
    /// This verifier's id: the pass must be for it.
    #[arg(long)]
    verifier: Option<String>,
    /// Check as if the time were this (Unix seconds); default now.
    #[arg(long)]
    at: Option<i64>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure {
        code: ErrorCode::FileUnreadable,
        message: format!("{}: {e}", path.display()),
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, bytes).map_err(|e| Failure {
        code: ErrorCode::FileUnreadable,
        message: format!("{}: {e}", path.display()),
    })
}

fn refused(e: &PassError) -> Failure {
    Failure {
        code: e.code(),
        message: e.to_string(),
    }
}

/// The pass text an argument stands for: the text itself, a file holding it, or the QR code
/// in a photo.
fn pass_text(arg: &str) -> Result<String, Failure> {
    if arg.starts_with(consentry_pass::PREFIX) {
        return Ok(arg.to_string());
    }
    let bytes = read(Path::new(arg))?;
    if bytes.starts_with(consentry_pass::PREFIX.as_bytes()) {
        return String::from_utf8(bytes)
            .map(|s| s.trim().to_string())
            .map_err(|_| refused(&PassError::Malformed("not text")));
    }
    match qr::read(&bytes) {
        Ok(found) => found
            .into_iter()
            .find(|t| t.starts_with(consentry_pass::PREFIX))
            .ok_or_else(|| refused(&PassError::Malformed("the QR code holds no pass"))),
        Err(qr::ReadError::NoCode) => Err(refused(&PassError::Malformed(
            "no QR code could be read in the photo",
        ))),
        Err(qr::ReadError::NotAnImage) => Err(Failure {
            code: ErrorCode::NotAnImage,
            message: format!("{arg}: neither a pass nor a PNG/JPEG photo of one"),
        }),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Runs a `consentry pass` command.
pub fn run(cmd: &PassCommand) -> Result<(), Failure> {
    match cmd {
        PassCommand::Issue(a) => {
            let remote = Remote::open(&a.server)?;
            let mut body = json!({ "access": a.access });
            if let Some(v) = &a.verifier {
                body["verifier"] = json!(v);
            }
            if let Some(d) = a.valid_days {
                body["valid_days"] = json!(d);
            }
            if let Some(alg) = &a.alg {
                body["alg"] = json!(alg);
            }
            let issued =
                remote.post_json(&format!("/api/v1/subjects/{}/passes", a.subject), &body)?;
            if let Some(path) = &a.qr {
                let text = issued["pass"].as_str().unwrap_or_default();
                let svg = path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
                let bytes = if svg {
                    qr::svg(text, 6).map(String::into_bytes)
                } else {
                    qr::png(text, 6)
                };
                write(path, &bytes.map_err(|e| refused(&e))?)?;
            }
            if a.json {
                println!("{issued}");
            } else {
                println!("{}", issued["pass"].as_str().unwrap_or_default());
            }
            Ok(())
        }
        PassCommand::Trust(a) | PassCommand::Revocations(a) => {
            let remote = Remote::open_with(&a.server, false)?;
            let which = if matches!(cmd, PassCommand::Trust(_)) {
                "trust"
            } else {
                "revocations"
            };
            let mut path = format!("/api/v1/passes/{which}?tenant={}", a.tenant);
            if let (Some(alg), "revocations") = (&a.alg, which) {
                path.push_str(&format!("&alg={alg}"));
            }
            let doc = remote.get(&path)?;
            write(&a.out, &doc)
        }
        PassCommand::Verify(a) => {
            let trust_text = String::from_utf8(read(&a.trust)?)
                .map_err(|_| bad(format!("{}: not text", a.trust.display())))?;
            let trust = TrustList::from_json(&trust_text).map_err(|e| bad(e.to_string()))?;
            let list = match &a.revocations {
                Some(path) => {
                    let text = String::from_utf8(read(path)?)
                        .map_err(|_| bad(format!("{}: not text", path.display())))?;
                    Some(RevocationList::from_json(&text, &trust).map_err(|e| bad(e.to_string()))?)
                }
                None => None,
            };
            let text = pass_text(&a.pass)?;
            let check = Check {
                now: a.at.unwrap_or_else(now),
                verifier: a.verifier.as_deref(),
                revocations: list.as_ref(),
                max_list_age: a.max_list_age_hours.saturating_mul(3600),
            };
            let claims = consentry_pass::verify(&text, &trust, &check).map_err(|e| refused(&e))?;
            let revocation = match &list {
                Some(l) => {
                    json!({"checked": true, "list_version": l.version, "list_issued_at": l.issued_at})
                }
                None => json!({"checked": false}),
            };
            let out = json!({ "decision": "valid", "claims": claims, "revocation": revocation });
            if a.json {
                println!("{out}");
            } else {
                println!("{out:#}");
            }
            Ok(())
        }
    }
}
