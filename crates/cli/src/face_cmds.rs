//! The face commands: detect, embed, compare, eval.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use clap::Args;
use consentry_face::align::CROP;
use consentry_face::eval::{self, Scored};
use consentry_face::{Embedding, FaceEngine, FaceError};
use consentry_types::{ErrorBody, ErrorCode, HasErrorCode};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::Failure;

/// `consentry detect`.
#[derive(Args)]
pub struct DetectArgs {
    /// The image (JPEG or PNG).
    image: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `consentry embed`.
#[derive(Args)]
pub struct EmbedArgs {
    /// One or more images.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Print JSON lines (the only output format; accepted for symmetry).
    #[arg(long)]
    pub json: bool,
    /// Images embedded in parallel (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// The images are already aligned 112x112 crops: skip detection and alignment.
    #[arg(long)]
    aligned: bool,
}

/// `consentry align`.
#[derive(Args)]
pub struct AlignArgs {
    /// One or more images.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Directory for the crops (`<image stem>.png`, 112x112 RGB); created if missing.
    #[arg(long)]
    out: PathBuf,
    /// Print JSON lines.
    #[arg(long)]
    pub json: bool,
}

/// `consentry compare`.
#[derive(Args)]
pub struct CompareArgs {
    /// First image (omit with --pairs).
    #[arg(required_unless_present = "pairs")]
    a: Option<PathBuf>,
    /// Second image (omit with --pairs).
    #[arg(required_unless_present = "pairs")]
    b: Option<PathBuf>,
    /// A file of `pathA<TAB>pathB` lines; one JSON line per pair is written, in order.
    #[arg(long, conflicts_with_all = ["a", "b"])]
    pairs: Option<PathBuf>,
    /// Match threshold on the cosine similarity (default: the calibrated one of the models).
    #[arg(long)]
    threshold: Option<f32>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Images embedded in parallel with --pairs (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
}

/// `consentry eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// LFW-format pairs file (`folds<TAB>n` header, then `name i j` / `name1 i name2 j`).
    #[arg(long)]
    pairs: PathBuf,
    /// Directory holding `<name>/<name>_NNNN.jpg`.
    #[arg(long)]
    root: PathBuf,
    /// Write roc.csv, roc.png, scores.tsv and metrics.json here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Threshold whose own accuracy is also reported (default: the models' calibrated one).
    #[arg(long)]
    threshold: Option<f32>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Images embedded in parallel (default: the number of cores).
    #[arg(long)]
    jobs: Option<usize>,
}

pub fn detect(engine: &FaceEngine, a: &DetectArgs) -> Result<(), Failure> {
    let img = engine.read(&a.image)?;
    let faces = engine.detect(&img)?;
    if a.json {
        println!("{}", json!({ "faces": faces }));
    } else {
        println!(
            "{} face(s) in {} ({}x{})",
            faces.len(),
            a.image.display(),
            img.width(),
            img.height()
        );
        for (i, f) in faces.iter().enumerate() {
            let [x, y, w, h] = f.bbox;
            println!(
                "  #{i}: box {x:.0},{y:.0} {w:.0}x{h:.0}  score {:.3}",
                f.score
            );
        }
    }
    Ok(())
}

fn error_json(e: &FaceError) -> serde_json::Value {
    json!(ErrorBody {
        code: e.code(),
        message: e.to_string()
    })
}

pub fn embed(engine: &FaceEngine, a: &EmbedArgs) -> Result<(), Failure> {
    let results = if a.aligned {
        a.images
            .iter()
            .map(|p| embed_aligned_file(engine, p))
            .collect()
    } else {
        embed_all(engine, &a.images, a.jobs)
    };
    for (path, r) in a.images.iter().zip(results) {
        let line = match r {
            Ok(e) => json!({ "image": path, "embedding": e }),
            Err(e) => json!({ "image": path, "error": error_json(&e) }),
        };
        println!("{line}");
    }
    Ok(())
}

/// Writes the aligned crop of each image's primary face, exactly what the embedder sees: for
/// checking alignment and for calibrating quantised models (`setup/calibrate_sface.py`).
pub fn align(engine: &FaceEngine, a: &AlignArgs) -> Result<(), Failure> {
    std::fs::create_dir_all(&a.out).map_err(|e| Failure {
        code: ErrorCode::FileUnreadable,
        message: format!("cannot create {}: {e}", a.out.display()),
    })?;
    for path in &a.images {
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        let dest = a.out.join(format!("{stem}.png"));
        let r = engine
            .read(path)
            .and_then(|img| engine.align_primary(&img))
            .and_then(|(_, face)| {
                let crop = image::RgbImage::from_raw(CROP as u32, CROP as u32, face.rgb)
                    .ok_or_else(|| FaceError::Truncated("crop size".into()))?;
                crop.save(&dest).map_err(|e| FaceError::FileUnreadable {
                    path: dest.display().to_string(),
                    source: std::io::Error::other(e),
                })
            });
        let line = match r {
            Ok(()) => json!({ "image": path, "crop": dest }),
            Err(e) => json!({ "image": path, "error": error_json(&e) }),
        };
        println!("{line}");
    }
    Ok(())
}

fn embed_aligned_file(engine: &FaceEngine, path: &Path) -> Result<Embedding, FaceError> {
    let img = engine.read(path)?;
    let crop = consentry_face::align::AlignedFace::from_crop(&img).ok_or_else(|| {
        FaceError::Truncated(format!(
            "{}x{} is not an aligned 112x112 crop",
            img.width(),
            img.height()
        ))
    })?;
    engine.embed_aligned(&crop)
}

pub fn compare(engine: &FaceEngine, a: &CompareArgs) -> Result<(), Failure> {
    if let Some(file) = &a.pairs {
        return compare_pairs(engine, a, file);
    }
    let (Some(pa), Some(pb)) = (&a.a, &a.b) else {
        return Err(invalid("compare needs two images or --pairs FILE".into()));
    };
    let ea = engine.embed_primary(&engine.read(pa)?)?.embedding;
    let eb = engine.embed_primary(&engine.read(pb)?)?.embedding;
    let score = ea.cosine(&eb);
    let threshold = a.threshold.unwrap_or(engine.default_threshold());
    let matched = score >= threshold;
    if a.json {
        println!(
            "{}",
            json!({ "score": score, "threshold": threshold, "match": matched })
        );
    } else {
        let verdict = if matched {
            "same person"
        } else {
            "different people"
        };
        println!("{verdict} (score {score:.4}, threshold {threshold:.4})");
    }
    Ok(())
}

fn read_text(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|source| {
        FaceError::FileUnreadable {
            path: path.display().to_string(),
            source,
        }
        .into()
    })
}

fn invalid(message: String) -> Failure {
    Failure {
        code: ErrorCode::InvalidRequest,
        message,
    }
}

fn compare_pairs(engine: &FaceEngine, a: &CompareArgs, file: &Path) -> Result<(), Failure> {
    let text = read_text(file)?;
    let mut pairs = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match line.split('\t').collect::<Vec<_>>().as_slice() {
            [x, y] => pairs.push((PathBuf::from(x), PathBuf::from(y))),
            _ => {
                return Err(invalid(format!(
                    "{} line {}: expected pathA<TAB>pathB",
                    file.display(),
                    i + 1
                )))
            }
        }
    }
    let threshold = a.threshold.unwrap_or(engine.default_threshold());
    let unique = unique_paths(pairs.iter().flat_map(|(x, y)| [x, y]));
    let embedded = embed_all(engine, &unique, a.jobs);
    let by_path: HashMap<&PathBuf, &Result<Embedding, FaceError>> =
        unique.iter().zip(&embedded).collect();
    for (x, y) in &pairs {
        let line = match (by_path.get(x), by_path.get(y)) {
            (Some(Ok(ex)), Some(Ok(ey))) => {
                let score = ex.cosine(ey);
                json!({ "a": x, "b": y, "score": score, "match": score >= threshold })
            }
            (Some(Err(e)), _) | (_, Some(Err(e))) => {
                json!({ "a": x, "b": y, "error": error_json(e) })
            }
            _ => {
                json!({ "a": x, "b": y, "error": { "code": ErrorCode::Internal, "message": "not embedded" } })
            }
        };
        println!("{line}");
    }
    Ok(())
}

fn unique_paths<'a>(paths: impl Iterator<Item = &'a PathBuf>) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    paths.filter(|p| seen.insert(*p)).cloned().collect()
}

/// Embeds the largest face of every image, in parallel, with a progress bar on stderr (hidden
/// when stderr is not a terminal). Results are in input order.
pub fn embed_all(
    engine: &FaceEngine,
    paths: &[PathBuf],
    jobs: Option<usize>,
) -> Vec<Result<Embedding, FaceError>> {
    par_map(paths, jobs, |path| {
        engine
            .read(path)
            .and_then(|img| engine.embed_primary(&img))
            .map(|f| f.embedding)
    })
}

/// `work` on every path, `jobs` at a time (default: one per core), with a progress bar on
/// stderr. Results are in input order.
pub fn par_map<R: Send>(
    paths: &[PathBuf],
    jobs: Option<usize>,
    work: impl Fn(&PathBuf) -> Result<R, FaceError> + Sync,
) -> Vec<Result<R, FaceError>> {
    let jobs = jobs
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .clamp(1, 64);
    let bar = ProgressBar::new(paths.len() as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  eta {eta}")
    {
        bar.set_style(style);
    }
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<R, FaceError>>>> =
        Mutex::new((0..paths.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(paths.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = paths.get(i) else { break };
                let r = work(path);
                if let Ok(mut slots) = slots.lock() {
                    slots[i] = Some(r);
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    slots
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(FaceError::Inference("worker failed".into()))))
        .collect()
}

pub fn eval(engine: &FaceEngine, a: &EvalArgs) -> Result<(), Failure> {
    let text = read_text(&a.pairs)?;
    let pairs = eval::parse_lfw_pairs(&text, &a.root)
        .map_err(|m| invalid(format!("{}: {m}", a.pairs.display())))?;
    let unique = unique_paths(pairs.iter().flat_map(|p| [&p.a, &p.b]));
    let embedded = embed_all(engine, &unique, a.jobs);
    let by_path: HashMap<&PathBuf, &Result<Embedding, FaceError>> =
        unique.iter().zip(&embedded).collect();
    let failed: Vec<&PathBuf> = unique
        .iter()
        .zip(&embedded)
        .filter(|(_, r)| r.is_err())
        .map(|(p, _)| p)
        .collect();
    let scored: Vec<Scored> = pairs
        .iter()
        .map(|p| {
            let score = match (by_path.get(&p.a), by_path.get(&p.b)) {
                (Some(Ok(x)), Some(Ok(y))) => x.cosine(y),
                _ => -1.0,
            };
            Scored {
                score,
                same: p.same,
                fold: p.fold,
            }
        })
        .collect();
    let threshold = a.threshold.unwrap_or(engine.default_threshold());
    let kfold = eval::kfold(&scored);
    let roc = eval::roc(&scored);
    let (tar3, t3) = eval::tar_at_far(&roc, 1e-3);
    let (tar4, t4) = eval::tar_at_far(&roc, 1e-4);
    let (eer, eer_t) = eval::eer(&roc);
    let best_all = eval::best_threshold(&scored);
    let metrics = json!({
        "pairs": scored.len(),
        "images": unique.len(),
        "failures_to_enrol": failed.len(),
        "failed_pairs": scored.iter().filter(|s| s.score == -1.0).count(),
        "kfold_accuracy": kfold.mean,
        "kfold_std": kfold.std,
        "kfold_thresholds": kfold.folds.iter().map(|f| f.0).collect::<Vec<_>>(),
        "kfold_fold_accuracy": kfold.folds.iter().map(|f| f.1).collect::<Vec<_>>(),
        "threshold": threshold,
        "accuracy_at_threshold": eval::accuracy(&scored, threshold),
        "best_threshold_all_pairs": best_all,
        "tar_at_far_1e-3": tar3, "threshold_far_1e-3": t3,
        "tar_at_far_1e-4": tar4, "threshold_far_1e-4": t4,
        "eer": eer, "eer_threshold": eer_t,
        "flip": engine.flip(),
        "models": format!("{:?}", engine.models()),
    });
    if let Some(out) = &a.out {
        write_outputs(out, &pairs, &scored, &roc, &metrics, &failed)?;
    }
    if a.json {
        println!("{metrics}");
    } else {
        println!("pairs {}  failures to enrol {}", scored.len(), failed.len());
        println!(
            "k-fold accuracy {:.2}% ± {:.2}%",
            kfold.mean * 100.0,
            kfold.std * 100.0
        );
        println!(
            "accuracy at threshold {threshold:.3}: {:.2}%",
            eval::accuracy(&scored, threshold) * 100.0
        );
        println!(
            "TAR {:.2}% at FAR 1e-3, {:.2}% at FAR 1e-4; EER {:.2}%",
            tar3 * 100.0,
            tar4 * 100.0,
            eer * 100.0
        );
    }
    Ok(())
}

fn write_outputs(
    out: &Path,
    pairs: &[eval::Pair],
    scored: &[Scored],
    roc: &[eval::RocPoint],
    metrics: &serde_json::Value,
    failed: &[&PathBuf],
) -> Result<(), Failure> {
    let io = |source| {
        Failure::from(FaceError::FileUnreadable {
            path: out.display().to_string(),
            source,
        })
    };
    std::fs::create_dir_all(out).map_err(io)?;
    let mut csv = String::from("threshold,far,tar\n");
    for p in roc {
        csv.push_str(&format!("{},{},{}\n", p.threshold, p.far, p.tar));
    }
    std::fs::write(out.join("roc.csv"), csv).map_err(io)?;
    let mut tsv = String::from("a\tb\tsame\tfold\tscore\n");
    for (p, s) in pairs.iter().zip(scored) {
        tsv.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            p.a.display(),
            p.b.display(),
            p.same,
            p.fold,
            s.score
        ));
    }
    std::fs::write(out.join("scores.tsv"), tsv).map_err(io)?;
    let failures: String = failed
        .iter()
        .map(|p| format!("{}\n", p.display()))
        .collect();
    std::fs::write(out.join("failures.txt"), failures).map_err(io)?;
    std::fs::write(out.join("metrics.json"), format!("{metrics:#}\n")).map_err(io)?;
    crate::plot::roc_png(&out.join("roc.png"), roc).map_err(|e| Failure {
        code: ErrorCode::Internal,
        message: format!("plot: {e}"),
    })?;
    Ok(())
}
