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
    /// Measure speaker verification on labelled pairs: EER, TAR at FAR 1e-2 and 1e-3, the
    /// errors at the shipped threshold, a DET plot.
    Eval(VoiceEvalArgs),
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
            VoiceCommand::Eval(a) => a.json,
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

/// `consentry voice eval`.
#[derive(Args)]
pub struct VoiceEvalArgs {
    /// Lines `pathA<TAB>pathB<TAB>1` (same speaker) or `…<TAB>0` (different), paths relative
    /// to --root.
    #[arg(long)]
    pairs: PathBuf,
    /// The directory the pairs' paths are relative to.
    #[arg(long)]
    root: PathBuf,
    /// Write metrics.json, scores.tsv and det.png here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The threshold whose errors are reported (default: the shipped one).
    #[arg(long, default_value_t = DEFAULT_THRESHOLD)]
    threshold: f32,
    /// Shortest recording scored, in seconds. The server and `compare` refuse under 3 s; the
    /// evaluation scores every pair it is given unless told otherwise (a recording it still
    /// cannot embed scores -1, a non-match).
    #[arg(long, default_value_t = 0.5)]
    min_seconds: f32,
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
    let mut engine = VoiceEngine::load(assets, threads).map_err(|e| failure(&e))?;
    if let VoiceCommand::Eval(a) = cmd {
        engine.min_seconds = a.min_seconds;
    }
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
        VoiceCommand::Eval(a) => eval(&engine, a),
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
        let pairs = read_pairs(file, "pathA<TAB>pathB", |cols| match cols {
            [x, y] => Some((PathBuf::from(x), PathBuf::from(y))),
            _ => None,
        })?;
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

/// `consentry bench voice`.
#[derive(Args)]
pub struct VoiceBenchArgs {
    /// A recording of at least 10 s (WAV or FLAC).
    file: PathBuf,
    /// Runs per length; the median is reported.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Times decode (of a WAV of that length at 16 kHz), fbank and embedding on one thread for 3 s,
/// 10 s and the whole recording.
pub fn bench(assets: &Assets, a: &VoiceBenchArgs) -> Result<(), Failure> {
    use std::time::Instant;
    let engine = VoiceEngine::load(assets, 1).map_err(|e| failure(&e))?;
    let bytes = read(&a.file).map_err(|e| failure(&e))?;
    let full = Audio::decode(&bytes, &engine.limits).map_err(|e| failure(&e))?;
    let mut rows = Vec::new();
    for seconds in [3.0f32, 10.0, full.seconds()] {
        let n = ((seconds * consentry_voice::audio::RATE as f32) as usize).min(full.samples.len());
        let wav = wav_bytes(&full.samples[..n]);
        let (mut dec, mut fb, mut emb, mut total) = (vec![], vec![], vec![], vec![]);
        for _ in 0..a.runs.max(1) {
            let t0 = Instant::now();
            let audio = Audio::decode(&wav, &engine.limits).map_err(|e| failure(&e))?;
            let t1 = Instant::now();
            let feats = consentry_voice::fbank::features(&audio.samples);
            let t2 = Instant::now();
            std::hint::black_box(&feats);
            engine.embed_audio(&audio).map_err(|e| failure(&e))?;
            let t3 = Instant::now();
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
            dec.push(ms(t0, t1));
            fb.push(ms(t1, t2));
            // embed_audio computes the features again: its time less the fbank's is the model's.
            emb.push(ms(t2, t3) - ms(t1, t2));
            total.push(ms(t0, t1) + ms(t2, t3));
        }
        rows.push(json!({
            "seconds": n as f32 / consentry_voice::audio::RATE as f32,
            "decode_ms": median_ms(dec), "fbank_ms": median_ms(fb),
            "model_ms": median_ms(emb), "total_ms": median_ms(total),
        }));
    }
    if a.json {
        println!(
            "{}",
            json!({ "file": a.file, "runs": a.runs, "threads": 1, "lengths": rows })
        );
    } else {
        println!(
            "seconds  decode ms  fbank ms  model ms  total ms (median of {}, 1 thread)",
            a.runs
        );
        for r in &rows {
            println!(
                "{:7.1}  {:9.2}  {:8.2}  {:8.2}  {:8.2}",
                r["seconds"].as_f64().unwrap_or(0.0),
                r["decode_ms"].as_f64().unwrap_or(0.0),
                r["fbank_ms"].as_f64().unwrap_or(0.0),
                r["model_ms"].as_f64().unwrap_or(0.0),
                r["total_ms"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

/// 16-bit mono WAV at 16 kHz.
fn wav_bytes(samples: &[f32]) -> Vec<u8> {
    let n = samples.len() * 2;
    let mut out = Vec::with_capacity(44 + n);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&u32::try_from(36 + n).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&consentry_voice::audio::RATE.to_le_bytes());
    out.extend_from_slice(&(consentry_voice::audio::RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
    for &s in samples {
        out.extend_from_slice(&((s.clamp(-1.0, 1.0) * 32_767.0) as i16).to_le_bytes());
    }
    out
}

/// The non-empty lines of a tab-separated pairs file through `parse`; a line it refuses is an
/// `invalid_request` naming the line and what was `expected`.
fn read_pairs<T>(
    file: &Path,
    expected: &str,
    parse: impl Fn(&[&str]) -> Option<T>,
) -> Result<Vec<T>, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| Failure {
        code: ErrorCode::FileUnreadable,
        message: format!("{}: {e}", file.display()),
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            parse(&line.split('\t').collect::<Vec<_>>()).ok_or_else(|| Failure {
                code: ErrorCode::InvalidRequest,
                message: format!("{} line {}: expected {expected}", file.display(), i + 1),
            })
        })
        .collect()
}

fn eval(engine: &VoiceEngine, a: &VoiceEvalArgs) -> Result<(), Failure> {
    use consentry_face::eval::{eer, roc, tar_at_far, Scored};
    let pairs = read_pairs(&a.pairs, "pathA<TAB>pathB<TAB>1|0", |cols| match cols {
        [x, y, l @ ("0" | "1")] => Some((a.root.join(x), a.root.join(y), *l == "1")),
        _ => None,
    })?;
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<PathBuf> = pairs
        .iter()
        .flat_map(|(x, y, _)| [x, y])
        .filter(|p| seen.insert(*p))
        .cloned()
        .collect();
    let embedded = embed_all(engine, &unique);
    let failed: Vec<(&PathBuf, String)> = unique
        .iter()
        .zip(&embedded)
        .filter_map(|(p, r)| r.as_ref().err().map(|e| (p, e.code().to_string())))
        .collect();
    let by_path: HashMap<&PathBuf, Option<&VoiceEmbedding>> = unique
        .iter()
        .zip(&embedded)
        .map(|(p, r)| (p, r.as_ref().ok()))
        .collect();
    // A pair with a recording that was refused (too short, unreadable) scores -1: a
    // non-match, so refusing hard recordings cannot make the figures look better.
    let scored: Vec<(Scored, &PathBuf, &PathBuf)> = pairs
        .iter()
        .map(|(x, y, same)| {
            let score = match (
                by_path.get(x).copied().flatten(),
                by_path.get(y).copied().flatten(),
            ) {
                (Some(ex), Some(ey)) => ex.cosine(ey),
                _ => -1.0,
            };
            (
                Scored {
                    score,
                    same: *same,
                    fold: 0,
                },
                x,
                y,
            )
        })
        .collect();
    let only: Vec<Scored> = scored.iter().map(|s| s.0).collect();
    let curve = roc(&only);
    let (eer_rate, eer_threshold) = eer(&curve);
    let (tar2, _) = tar_at_far(&curve, 1e-2);
    let (tar3, _) = tar_at_far(&curve, 1e-3);
    let genuine = only.iter().filter(|s| s.same).count();
    let impostor = only.len() - genuine;
    let frr = only
        .iter()
        .filter(|s| s.same && s.score < a.threshold)
        .count() as f64
        / genuine.max(1) as f64;
    let far = only
        .iter()
        .filter(|s| !s.same && s.score >= a.threshold)
        .count() as f64
        / impostor.max(1) as f64;
    let errors = frr * genuine as f64 + far * impostor as f64;
    let metrics = json!({
        "pairs": only.len(), "genuine": genuine, "impostor": impostor,
        "recordings": unique.len(), "refused": failed.len(),
        "eer": eer_rate, "eer_threshold": eer_threshold,
        "tar_at_far_1e-2": tar2, "tar_at_far_1e-3": tar3,
        "threshold": a.threshold, "frr": frr, "far": far,
        "accuracy": 1.0 - errors / only.len().max(1) as f64,
    });
    if let Some(out) = &a.out {
        let io = |e: std::io::Error| Failure {
            code: ErrorCode::FileUnreadable,
            message: format!("{}: {e}", out.display()),
        };
        std::fs::create_dir_all(out).map_err(io)?;
        let mut tsv = String::from("score\tsame\ta\tb\n");
        for (s, x, y) in &scored {
            tsv.push_str(&format!(
                "{:.6}\t{}\t{}\t{}\n",
                s.score,
                u8::from(s.same),
                x.display(),
                y.display()
            ));
        }
        std::fs::write(out.join("scores.tsv"), tsv).map_err(io)?;
        std::fs::write(out.join("metrics.json"), format!("{metrics:#}\n")).map_err(io)?;
        let det: Vec<(f64, f64)> = curve.iter().map(|p| (p.far, 1.0 - p.tar)).collect();
        crate::plot::det_png_with(
            &out.join("det.png"),
            &det,
            "DET: speaker verification (CAM++)",
            (
                "FAR (other speakers accepted)",
                "FRR (same speaker refused)",
            ),
        )
        .map_err(|e| Failure {
            code: ErrorCode::Internal,
            message: format!("det.png: {e}"),
        })?;
    }
    if a.json {
        println!("{metrics}");
    } else {
        println!(
            "{} pairs ({genuine} same, {impostor} different), {} of {} recordings refused",
            only.len(),
            failed.len(),
            unique.len()
        );
        println!("EER {:.2}% at {:.3}", eer_rate * 100.0, eer_threshold);
        println!(
            "TAR {:.2}% at FAR 1e-2, {:.2}% at FAR 1e-3",
            tar2 * 100.0,
            tar3 * 100.0
        );
        println!(
            "at threshold {:.3}: FRR {:.2}%, FAR {:.2}%, accuracy {:.2}%",
            a.threshold,
            frr * 100.0,
            far * 100.0,
            (1.0 - errors / only.len().max(1) as f64) * 100.0
        );
        for (p, code) in &failed {
            eprintln!("refused ({code}): {}", p.display());
        }
    }
    Ok(())
}
