//! `consentry audit`: save a checkpoint for a third party, export the log, verify it offline.
//!
//! Exit status of `verify`: 0 when every entry verifies and the log only grew since the saved
//! checkpoint; 1 when it does not (the report names the first bad entry); 2 or 4 when the
//! verification could not be carried out (bad arguments, server unreachable).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use consentry_audit::verify::{self, Log, MemoryLog, Report};
use consentry_audit::{hash_from_base64, Hash, VerifierKey};
use consentry_types::ErrorCode;
use serde::{Deserialize, Serialize};

use crate::remote::{bad, unreachable, Remote, ServerArgs};
use crate::Failure;

/// `consentry audit`.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Save the log's current checkpoint, with the key that signs it, for a third party to keep.
    Checkpoint(CheckpointArgs),
    /// Save every entry and the current checkpoint to a file that verifies without the server.
    Export(ExportArgs),
    /// Verify the log (on a server, or in an export file) against a saved checkpoint.
    Verify(VerifyArgs),
}

impl AuditCommand {
    /// Whether the command prints JSON.
    pub fn json(&self) -> bool {
        match self {
            AuditCommand::Checkpoint(a) => a.json,
            AuditCommand::Export(a) => a.json,
            AuditCommand::Verify(a) => a.json,
        }
    }
}

/// `consentry audit checkpoint`.
#[derive(Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Where to write the checkpoint file.
    #[arg(long)]
    out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `consentry audit export`.
#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Where to write the export.
    #[arg(long)]
    out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `consentry audit verify`.
#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The checkpoint saved earlier (`consentry audit checkpoint --out`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Verify an export file (`consentry audit export --out`) instead of a server.
    #[arg(long, conflicts_with_all = ["server", "key"])]
    export: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A saved checkpoint: the signed note and the key it was signed with, as trusted when saved.
#[derive(Serialize, Deserialize)]
struct SavedCheckpoint {
    format: String,
    verifier_key: String,
    checkpoint: String,
}

/// An export: the log's entries and the checkpoint over them.
#[derive(Serialize, Deserialize)]
struct Export {
    format: String,
    verifier_key: String,
    checkpoint: String,
    entries: Vec<ExportEntry>,
}

#[derive(Serialize, Deserialize, Clone)]
struct ExportEntry {
    index: u64,
    data: String,
}

const CHECKPOINT_FORMAT: &str = "consentry-audit-checkpoint-v1";
const EXPORT_FORMAT: &str = "consentry-audit-export-v1";

/// A server's log, read through the API.
struct ServerLog(Remote);

impl ServerLog {
    fn open(a: &ServerArgs) -> Result<ServerLog, Failure> {
        Remote::open(a).map(ServerLog)
    }

    fn json(&self, path: &str) -> Result<serde_json::Value, Failure> {
        self.0.json(path)
    }

    fn verifier_key(&self) -> Result<String, Failure> {
        let keys = self.json("/api/v1/tenant/public-keys")?;
        keys["audit_key"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| unreachable("the server did not give its audit key"))
    }

    fn note(&self) -> Result<String, Failure> {
        String::from_utf8(self.0.get("/api/v1/audit/checkpoint")?)
            .map_err(|_| unreachable("the checkpoint is not text"))
    }

    fn page(&self, start: u64, end: u64) -> Result<Vec<(u64, String)>, Failure> {
        let v = self.json(&format!("/api/v1/audit/entries?start={start}&end={end}"))?;
        let entries: Vec<ExportEntry> = serde_json::from_value(v["entries"].clone())
            .map_err(|e| unreachable(format!("entries: {e}")))?;
        Ok(entries.into_iter().map(|e| (e.index, e.data)).collect())
    }
}

fn text(f: Failure) -> String {
    format!("[{}] {}", f.code, f.message)
}

impl Log for ServerLog {
    fn checkpoint(&mut self) -> Result<String, String> {
        self.note().map_err(text)
    }

    fn entries(&mut self, start: u64, end: u64) -> Result<Vec<(u64, String)>, String> {
        self.page(start, end).map_err(text)
    }

    fn consistency(&mut self, first: u64, second: u64) -> Result<Vec<Hash>, String> {
        let v = self
            .json(&format!(
                "/api/v1/audit/proof/consistency?first={first}&second={second}"
            ))
            .map_err(text)?;
        v["hashes"]
            .as_array()
            .ok_or("no hashes in the proof")?
            .iter()
            .map(|h| {
                h.as_str()
                    .and_then(hash_from_base64)
                    .ok_or_else(|| "a proof hash is not base64 of 32 bytes".to_string())
            })
            .collect()
    }
}

fn write_file(path: &PathBuf, value: &impl Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| bad(e.to_string()))?;
    std::fs::write(path, text + "\n").map_err(|e| Failure {
        code: ErrorCode::FileUnreadable,
        message: format!("{}: {e}", path.display()),
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &PathBuf) -> Result<T, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure {
        code: ErrorCode::FileUnreadable,
        message: format!("{}: {e}", path.display()),
    })?;
    serde_json::from_str(&text).map_err(|e| bad(format!("{}: {e}", path.display())))
}

fn size_of(note: &str) -> u64 {
    note.lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or(0)
}

/// Runs an audit command. `Ok(false)` when a verification found a problem (exit status 1).
pub fn run(cmd: &AuditCommand) -> Result<bool, Failure> {
    match cmd {
        AuditCommand::Checkpoint(a) => {
            let log = ServerLog::open(&a.server)?;
            let key = log.verifier_key()?;
            let note = log.note()?;
            // Refuse to save what would never verify.
            let vk = VerifierKey::parse(&key).map_err(|e| unreachable(e.to_string()))?;
            let cp = consentry_audit::Checkpoint::open(&note, &vk)
                .map_err(|e| unreachable(format!("the server's checkpoint: {e}")))?;
            let saved = SavedCheckpoint {
                format: CHECKPOINT_FORMAT.into(),
                verifier_key: key,
                checkpoint: note,
            };
            write_file(&a.out, &saved)?;
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({"origin": cp.origin, "tree_size": cp.size, "out": a.out})
                );
            } else {
                println!(
                    "saved the checkpoint of {} at {} entries to {}",
                    cp.origin,
                    cp.size,
                    a.out.display()
                );
            }
            Ok(true)
        }
        AuditCommand::Export(a) => {
            let log = ServerLog::open(&a.server)?;
            let key = log.verifier_key()?;
            let note = log.note()?;
            let size = size_of(&note);
            let bar = progress(size, a.json);
            let mut entries = Vec::new();
            let mut next = 0;
            while next < size {
                let end = (next + verify::PAGE).min(size);
                let page = log.page(next, end)?;
                if page.is_empty() {
                    break;
                }
                next = page.last().map_or(end, |(i, _)| i + 1);
                entries.extend(
                    page.into_iter()
                        .map(|(index, data)| ExportEntry { index, data }),
                );
                bar.set_position(next);
            }
            bar.finish_and_clear();
            let n = entries.len();
            write_file(
                &a.out,
                &Export {
                    format: EXPORT_FORMAT.into(),
                    verifier_key: key,
                    checkpoint: note,
                    entries,
                },
            )?;
            if a.json {
                println!("{}", serde_json::json!({"entries": n, "out": a.out}));
            } else {
                println!("exported {n} entries to {}", a.out.display());
            }
            Ok(true)
        }
        AuditCommand::Verify(a) => {
            let saved: SavedCheckpoint = read_json(&a.checkpoint)?;
            if saved.format != CHECKPOINT_FORMAT {
                return Err(bad(
                    "not a checkpoint file (consentry audit checkpoint --out)",
                ));
            }
            let key = VerifierKey::parse(&saved.verifier_key).map_err(|e| bad(e.to_string()))?;
            let started = std::time::Instant::now();
            let bar = progress(size_of(&saved.checkpoint), a.json);
            let mut on_progress = |done: u64, total: u64| {
                bar.set_length(total);
                bar.set_position(done);
            };
            let report = match &a.export {
                Some(path) => {
                    let export: Export = read_json(path)?;
                    if export.format != EXPORT_FORMAT {
                        return Err(bad("not an export file (consentry audit export --out)"));
                    }
                    let mut log = MemoryLog {
                        checkpoint: export.checkpoint,
                        entries: export
                            .entries
                            .into_iter()
                            .map(|e| (e.index, e.data))
                            .collect(),
                    };
                    verify::verify(&mut log, &key, &saved.checkpoint, &mut on_progress)
                }
                None => {
                    let mut log = ServerLog::open(&a.server)?;
                    verify::verify(&mut log, &key, &saved.checkpoint, &mut on_progress)
                }
            }
            .map_err(|e| match e {
                verify::VerifyError::Saved(e) => bad(format!("the saved checkpoint: {e}")),
                verify::VerifyError::Fetch(m) => unreachable(m),
            })?;
            bar.finish_and_clear();
            print_report(&report, started.elapsed(), a.json);
            Ok(report.ok())
        }
    }
}

fn progress(total: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} entries ({per_sec}, {eta})")
    {
        bar.set_style(style);
    }
    bar
}

fn print_report(r: &Report, took: std::time::Duration, json: bool) {
    use verify::Finding;
    if json {
        let mut v = serde_json::to_value(r).unwrap_or_default();
        v["ok"] = r.ok().into();
        v["seconds"] = took.as_secs_f64().into();
        println!("{v}");
        return;
    }
    let what = match &r.finding {
        Finding::Ok => format!(
            "OK: {} entries verify; the log grew from {} to {} entries by appends only",
            r.entries_checked, r.saved_size, r.current_size
        ),
        Finding::CurrentCheckpointInvalid { reason } => {
            format!("FAILED: the log's current checkpoint does not verify with the saved key ({reason})")
        }
        Finding::Shrunk { saved, current } => {
            format!("FAILED: the log shrank from {saved} to {current} entries")
        }
        Finding::NotAnExtension => format!(
            "FAILED: the log's tree is not an extension of the saved checkpoint of {} entries: its history was rewritten",
            r.saved_size
        ),
        Finding::Missing { index } => format!("FAILED: entry {index} is missing"),
        Finding::Changed { against } => format!(
            "FAILED: the export's entries do not match the {against} checkpoint: an entry was changed, removed or moved"
        ),
        Finding::Altered { index, against } => format!(
            "FAILED: entry {index} was changed, removed or moved (it no longer matches the {against} checkpoint)"
        ),
    };
    println!("{}: {what} ({:.2} s)", r.origin, took.as_secs_f64());
}
