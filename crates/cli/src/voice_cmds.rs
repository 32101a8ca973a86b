//! `consentry voice`: speaker embeddings and comparisons offline.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use consentry_face::runtime::Assets;
use consentry_types::{ErrorCode, HasErrorCode};
use consentry_voice::{Audio, VoiceEmbedding, VoiceEngine, VoiceError};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::Failure;

use consentry_voice::DEFAULT_THRESHOLD;

/// `consentry voice`.
#[derive(Subcommand)]
pub enum VoiceCommand {
    /// Print the speaker embedding of each recording (WAV or FLAC), one JSON line each.
    Embed(VoiceEmbedArgs),
    /// Compare two recordings, or every pair listed in a file.
    Compare(VoiceCompareArgs),
    /// Print a recording's log-mel filterbank (Kaldi-compatible, before mean normalisation),
    /// for checking against another implementation.
    Features(VoiceFeaturesArgs),
}

impl VoiceCommand {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        match self {
            VoiceCommand::Embed(a) => a.json,
            VoiceCommand::Compare(a) => a.json,
            VoiceCommand::Features(_) => true,
        }
    }
}

/// `consentry voice embed`.
#[derive(Args)]
pub struct VoiceEmbedArgs {
    /// Recordings.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print JSON (the embedding in full).
    #[arg(long)]
    pub json: bool,
}

/// `consentry voice compare`.
#[derive(Args)]
pub struct VoiceCompareArgs {
    /// First recording (omit with --pairs).
    #[arg(required_unless_present = "pairs")]
    a: Option<PathBuf>,
    /// Second recording (omit with --pairs).
    #[arg(required_unless_present = "pairs")]
    b: Option<PathBuf>,
    /// A file of `pathA<TAB>pathB` lines; one JSON line per pair is written, in order.
    #[arg(long, conflicts_with_all = ["a", "b"])]
    pairs: Option<PathBuf>,
    /// Match threshold on the cosine similarity.
    #[arg(long, default_value_t = DEFAULT_THRESHOLD)]
    threshold: f32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `consentry voice features`.
#[derive(Args)]
pub struct VoiceFeaturesArgs {
    /// A recording.
    file: PathBuf,
}

fn failure(e: &VoiceError) -> Failure {
    Failure {
        code: e.code(),
        message: e.to_string(),
    }
}

fn error_json(e: &VoiceError) -> serde_json::Value {
    json!({ "code": e.code(), "message": e.to_string() })
}

fn read(path: &Path) -> Result<Vec<u8>, VoiceError> {
    std::fs::read(path).map_err(|e| VoiceError::NotAudio(format!("{}: {e}", path.display())))
}

/// Runs a voice command.
pub fn run(assets: &Assets, threads: usize, cmd: &VoiceCommand) -> Result<(), Failure> {
    if let VoiceCommand::Features(a) = cmd {
        let bytes = read(&a.file).map_err(|e| failure(&e))?;
        let audio = Audio::decode(&bytes, &consentry_voice::AudioLimits::default())
            .map_err(|e| failure(&e))?;
        let feats = consentry_voice::fbank::log_mel(&audio.samples);
        let rows: Vec<&[f32]> = feats.chunks(consentry_voice::fbank::BINS).collect();
        println!(
            "{}",
            json!({ "frames": rows.len(), "bins": consentry_voice::fbank::BINS, "log_mel": rows })
        );
        return Ok(());
    }
    let engine = VoiceEngine::load(assets, threads).map_err(|e| failure(&e))?;
    match cmd {
        VoiceCommand::Embed(a) => {
            let out = embed_all(&engine, &a.files);
            for (path, r) in a.files.iter().zip(out) {
                let line = match r {
                    Ok(e) => json!({ "file": path, "embedding": e.0 }),
                    Err(e) => json!({ "file": path, "error": error_json(&e) }),
                };
                println!("{line}");
            }
            Ok(())
        }
        VoiceCommand::Compare(a) => compare(&engine, a),
        VoiceCommand::Features(_) => Ok(()),
    }
}

fn embed_all(engine: &VoiceEngine, paths: &[PathBuf]) -> Vec<Result<VoiceEmbedding, VoiceError>> {
    let bar = ProgressBar::new(paths.len() as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} recordings  {per_sec}  eta {eta}")
    {
        bar.set_style(style);
    }
    let out = paths
        .iter()
        .map(|p| {
            let r = read(p).and_then(|b| engine.embed(&b));
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    out
}

fn compare(engine: &VoiceEngine, a: &VoiceCompareArgs) -> Result<(), Failure> {
    if let Some(file) = &a.pairs {
        let text = std::fs::read_to_string(file).map_err(|e| Failure {
            code: ErrorCode::FileUnreadable,
            message: format!("{}: {e}", file.display()),
        })?;
        let mut pairs = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            match line.split('\t').collect::<Vec<_>>().as_slice() {
                [x, y] => pairs.push((PathBuf::from(x), PathBuf::from(y))),
                _ => {
                    return Err(Failure {
                        code: ErrorCode::InvalidRequest,
                        message: format!(
                            "{} line {}: expected pathA<TAB>pathB",
                            file.display(),
                            i + 1
                        ),
                    })
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<PathBuf> = pairs
            .iter()
            .flat_map(|(x, y)| [x, y])
            .filter(|p| seen.insert(*p))
            .cloned()
            .collect();
        let embedded = embed_all(engine, &unique);
        let by_path: HashMap<&PathBuf, &Result<VoiceEmbedding, VoiceError>> =
            unique.iter().zip(&embedded).collect();
        for (x, y) in &pairs {
            let line = match (by_path.get(x), by_path.get(y)) {
                (Some(Ok(ex)), Some(Ok(ey))) => {
                    let score = ex.cosine(ey);
                    json!({ "a": x, "b": y, "score": score, "match": score >= a.threshold })
                }
                (Some(Err(e)), _) | (_, Some(Err(e))) => {
                    json!({ "a": x, "b": y, "error": error_json(e) })
                }
                _ => json!({ "a": x, "b": y, "error": { "code": ErrorCode::Internal } }),
            };
            println!("{line}");
        }
        return Ok(());
    }
    let (Some(x), Some(y)) = (&a.a, &a.b) else {
        return Err(Failure {
            code: ErrorCode::InvalidRequest,
            message: "compare needs two recordings or --pairs FILE".into(),
        });
    };
    let ex = read(x)
        .and_then(|b| engine.embed(&b))
        .map_err(|e| failure(&e))?;
    let ey = read(y)
        .and_then(|b| engine.embed(&b))
        .map_err(|e| failure(&e))?;
    let score = ex.cosine(&ey);
    let matched = score >= a.threshold;
    if a.json {
        println!(
            "{}",
            json!({ "score": score, "threshold": a.threshold, "match": matched })
        );
    } else {
        let verdict = if matched {
            "same speaker"
        } else {
            "different speakers"
        };
        println!("{verdict} (score {score:.4}, threshold {:.4})", a.threshold);
    }
    Ok(())
}
