//! `consentry pad`: presentation-attack detection, measured offline.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use consentry_face::challenge::{judge, observe, Action, Frame, Rules};
use consentry_face::pad::{det_curve, pad_metrics, ChallengeModels, PadProfile, PassiveDetector};
use consentry_face::runtime::Assets;
use consentry_face::{FaceEngine, FaceError};
use consentry_types::ErrorCode;
use serde_json::json;

use crate::face_cmds::par_map;
use crate::Failure;

/// `consentry pad`.
#[derive(Subcommand)]
pub enum PadCommand {
    /// Measure the passive check per ISO/IEC 30107-3 on two trees of JPEG/PNG photos: APCER
    /// (per attack type), BPCER, BPCER at APCER 5% and 1%, failures to detect, a DET curve.
    Eval(PadEvalArgs),
    /// Judge a video clip against a challenge (the active check, offline): frames taken with
    /// ffmpeg, each frame's pose, eyes, passive score and (facing the camera) embedding.
    Video(PadVideoArgs),
}

impl PadCommand {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        match self {
            PadCommand::Eval(a) => a.json,
            PadCommand::Video(a) => a.json,
        }
    }
}

/// `consentry pad eval`.
#[derive(Args)]
pub struct PadEvalArgs {
    /// Bona fide presentations: a directory searched for .jpg, .jpeg and .png files.
    #[arg(long)]
    real: PathBuf,
    /// Attack presentations, `DIR` or `TYPE=DIR` (repeatable): each is one attack type (its
    /// name, or the directory's), for APCER per type.
    #[arg(long, required = true)]
    attack: Vec<String>,
    /// The passive model: `faceplugin` (shipped) or `minifasnet:DIR` (the operator's MiniFASNet
    /// pair).
    #[arg(long, default_value = "faceplugin")]
    model: String,
    /// The threshold on the probability of "real" (default: the profile's).
    #[arg(long)]
    threshold: Option<f32>,
    /// Where to write det.png and scores.csv.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Images processed in parallel (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `consentry pad video`.
#[derive(Args)]
pub struct PadVideoArgs {
    /// The clip (any format ffmpeg reads).
    clip: PathBuf,
    /// The actions asked, in order: blink, left, right, up (comma-separated).
    #[arg(long)]
    challenge: String,
    /// Frames taken per second of the clip.
    #[arg(long, default_value_t = 10.0)]
    fps: f32,
    /// Seconds the actions must fit in (default: the whole clip).
    #[arg(long)]
    deadline: Option<f32>,
    /// The passive model, as for `pad eval`.
    #[arg(long, default_value = "faceplugin")]
    model: String,
    /// Also print every frame's signals.
    #[arg(long)]
    frames: bool,
    /// Frames processed in parallel (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The frames of `clip` at `fps`, as JPEG files in a temporary directory (by ffmpeg).
fn extract_frames(clip: &Path, fps: f32) -> Result<(tempfile::TempDir, Vec<PathBuf>), Failure> {
    let dir = tempfile::tempdir().map_err(|e| Failure {
        code: ErrorCode::Internal,
        message: format!("temporary directory: {e}"),
    })?;
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(clip)
        .args(["-vf", &format!("fps={fps}"), "-q:v", "2"])
        .arg(dir.path().join("%05d.jpg"))
        .status()
        .map_err(|e| Failure {
            code: ErrorCode::ModelUnavailable,
            message: format!("ffmpeg: {e} (Debian: apt-get install ffmpeg)"),
        })?;
    if !status.success() {
        return Err(Failure {
            code: ErrorCode::InvalidRequest,
            message: format!("ffmpeg could not read {}", clip.display()),
        });
    }
    let frames = images(dir.path())?;
    Ok((dir, frames))
}

fn video(engine: &FaceEngine, assets: &Assets, a: &PadVideoArgs) -> Result<(), Failure> {
    let bad = |message: String| Failure {
        code: ErrorCode::InvalidRequest,
        message,
    };
    let fail = |e: FaceError| Failure {
        code: consentry_types::HasErrorCode::code(&e),
        message: e.to_string(),
    };
    let asked = Action::parse_list(&a.challenge).map_err(bad)?;
    if !(1.0..=60.0).contains(&a.fps) {
        return Err(bad("--fps must be 1 to 60".into()));
    }
    let profile = PadProfile::parse(&a.model).map_err(bad)?;
    let passive = PassiveDetector::load(assets, &profile, 1).map_err(fail)?;
    let models = ChallengeModels::load(assets, 1).map_err(fail)?;
    let (_dir, paths) = extract_frames(&a.clip, a.fps)?;
    let started = std::time::Instant::now();
    let results = par_map(&paths, a.jobs, |p| {
        let img = engine.read(p)?;
        // ffmpeg numbers the frames from 1 (`%05d.jpg`).
        let n: f32 = p
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
            .unwrap_or(1.0);
        observe(engine, &passive, &models, &img, (n - 1.0) / a.fps)
    });
    let work_s = started.elapsed().as_secs_f64();
    let frames: Vec<Frame> = results
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(fail)?;
    let rules = Rules {
        passive: profile.default_threshold(),
        deadline_s: a.deadline,
        ..Rules::default()
    };
    let verdict = judge(&frames, &asked, &rules);
    let per_frame: Vec<_> = frames
        .iter()
        .map(|f| {
            json!({
                "t": f.t, "faces": f.faces, "signals": f.signals, "passive": f.passive,
                "frontal": f.embedding.is_some(),
            })
        })
        .collect();
    let mut result = json!({
        "challenge": asked,
        "pass": verdict.pass,
        "checks": verdict.checks,
        "events": verdict.events,
        "passive_median": verdict.passive_median,
        "reasons": verdict.reasons,
        "frames_judged": frames.len(),
        "model": profile.name(),
        "ms_per_frame": work_s * 1e3 / frames.len().max(1) as f64,
    });
    if a.frames {
        result["frames"] = json!(per_frame);
    }
    if a.json {
        println!("{result}");
    } else {
        println!("{result:#}");
    }
    Ok(())
}

fn images(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| Failure {
            code: ErrorCode::FileUnreadable,
            message: format!("{}: {e}", d.display()),
        })?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| matches!(x.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Each image's score, and the images where no face was found.
type Scored = (Vec<(PathBuf, f32)>, Vec<PathBuf>);

/// Scores of the largest face of each image; the paths where no face was found.
fn score_all(
    engine: &FaceEngine,
    pad: &PassiveDetector,
    paths: &[PathBuf],
    jobs: Option<usize>,
) -> Result<Scored, Failure> {
    let mut scored = Vec::new();
    let mut missed = Vec::new();
    let results = par_map(paths, jobs, |p| {
        let img = engine.read(p)?;
        let (det, _) = engine.align_primary(&img)?;
        pad.score(&img, &det)
    });
    for (p, r) in paths.iter().zip(results) {
        match r {
            Ok(s) => scored.push((p.clone(), s)),
            Err(FaceError::NoFace) => missed.push(p.clone()),
            Err(e) => {
                return Err(Failure {
                    code: consentry_types::HasErrorCode::code(&e),
                    message: format!("{}: {e}", p.display()),
                })
            }
        }
    }
    Ok((scored, missed))
}

pub fn run(engine: &FaceEngine, assets: &Assets, cmd: &PadCommand) -> Result<(), Failure> {
    let a = match cmd {
        PadCommand::Eval(a) => a,
        PadCommand::Video(v) => return video(engine, assets, v),
    };
    let bad = |message: String| Failure {
        code: ErrorCode::InvalidRequest,
        message,
    };
    let profile = PadProfile::parse(&a.model).map_err(bad)?;
    let pad = PassiveDetector::load(assets, &profile, 1).map_err(|e| Failure {
        code: consentry_types::HasErrorCode::code(&e),
        message: e.to_string(),
    })?;
    let threshold = a.threshold.unwrap_or_else(|| profile.default_threshold());
    let (real, real_missed) = score_all(engine, &pad, &images(&a.real)?, a.jobs)?;
    let mut attacks = Vec::new();
    let mut attack_missed = 0;
    let mut rows: Vec<(String, PathBuf, f32)> = real
        .iter()
        .map(|(p, s)| ("real".to_string(), p.clone(), *s))
        .collect();
    for spec in &a.attack {
        let (name, dir) = match spec.split_once('=') {
            Some((n, d)) => (n.to_string(), PathBuf::from(d)),
            None => {
                let d = PathBuf::from(spec);
                let n = d
                    .file_name()
                    .map_or_else(|| "attack".into(), |n| n.to_string_lossy().into_owned());
                (n, d)
            }
        };
        let (scored, missed) = score_all(engine, &pad, &images(&dir)?, a.jobs)?;
        attack_missed += missed.len();
        rows.extend(scored.iter().map(|(p, s)| (name.clone(), p.clone(), *s)));
        attacks.push((name, scored.into_iter().map(|(_, s)| s).collect::<Vec<_>>()));
    }
    let real_scores: Vec<f32> = real.iter().map(|(_, s)| *s).collect();
    let m = pad_metrics(&real_scores, &attacks, threshold);
    if let Some(out) = &a.out {
        std::fs::create_dir_all(out).map_err(|e| bad(format!("{}: {e}", out.display())))?;
        let mut csv = String::from("class,path,score\n");
        for (class, p, s) in &rows {
            csv.push_str(&format!("{class},{},{s:.6}\n", p.display()));
        }
        std::fs::write(out.join("scores.csv"), csv)
            .map_err(|e| bad(format!("{}: {e}", out.display())))?;
        crate::plot::det_png(
            &out.join("det.png"),
            &det_curve(&real_scores, &attacks),
            profile.name(),
        )
        .map_err(|e| bad(format!("det.png: {e}")))?;
    }
    let result = json!({
        "model": profile.name(),
        "model_sha256": pad.digests,
        "threshold": (f64::from(threshold) * 1e4).round() / 1e4,
        "n_real": m.n_real,
        "n_attack": m.n_attack,
        "apcer": m.apcer,
        "apcer_per_type": m.apcer_per_type.iter().map(|(n, v)| json!({"type": n, "apcer": v})).collect::<Vec<_>>(),
        "bpcer": m.bpcer,
        "bpcer_at_apcer_5": m.bpcer_at_apcer_5,
        "bpcer_at_apcer_1": m.bpcer_at_apcer_1,
        "eer": m.eer,
        "failures_to_detect": {"real": real_missed.len(), "attack": attack_missed},
    });
    if a.json {
        println!("{result}");
    } else {
        println!(
            "{} at threshold {threshold}: APCER {:.2}% (worst type), BPCER {:.2}%; BPCER at APCER 5%: {}, at 1%: {}; EER {:.2}%",
            profile.name(),
            m.apcer * 100.0,
            m.bpcer * 100.0,
            m.bpcer_at_apcer_5.map_or("n/a".into(), |v| format!("{:.2}%", v * 100.0)),
            m.bpcer_at_apcer_1.map_or("n/a".into(), |v| format!("{:.2}%", v * 100.0)),
            m.eer * 100.0
        );
        for (n, v) in &m.apcer_per_type {
            println!("  APCER {n}: {:.2}%", v * 100.0);
        }
        println!(
            "  {} real, {} attack; no face found in {} real and {} attack images",
            m.n_real,
            m.n_attack,
            real_missed.len(),
            attack_missed
        );
    }
    Ok(())
}
