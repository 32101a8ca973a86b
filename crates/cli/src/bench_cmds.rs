//! `consentry bench`: timing runs whose figures go into docs/benchmarks.md.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use consentry_face::FaceEngine;
use serde_json::json;

use consentry_index::{matrix, FlatIndex, HnswIndex, HnswParams, Index, QuantIndex};
use consentry_types::ErrorCode;
use indicatif::{ProgressBar, ProgressStyle};

use crate::Failure;

fn io_failure(what: &std::path::Path, e: std::io::Error) -> Failure {
    Failure {
        code: ErrorCode::FileUnreadable,
        message: format!("{}: {e}", what.display()),
    }
}

pub fn gen(a: &GenArgs) -> Result<(), Failure> {
    let mut rng = matrix::Rng::new(a.seed);
    let (base, queries) = match a.kind.as_str() {
        "clustered" => {
            let per = a.per_identity.max(1);
            let (g, q, _) = matrix::clustered(a.n / per, per, a.queries, a.dim, a.noise, &mut rng);
            (g, q)
        }
        "random" => (
            matrix::random_unit(a.n, a.dim, &mut rng),
            matrix::random_unit(a.queries, a.dim, &mut rng),
        ),
        other => {
            return Err(Failure {
                code: ErrorCode::InvalidRequest,
                message: format!("unknown --kind {other}"),
            })
        }
    };
    matrix::write(&a.out_base, &base).map_err(|e| io_failure(&a.out_base, e))?;
    matrix::write(&a.out_queries, &queries).map_err(|e| io_failure(&a.out_queries, e))?;
    Ok(())
}

/// Peak resident memory of this process so far (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub fn search(a: &SearchArgs) -> Result<(), Failure> {
    let base = matrix::read(&a.base, a.dim).map_err(|e| io_failure(&a.base, e))?;
    let queries = matrix::read(&a.queries, a.dim).map_err(|e| io_failure(&a.queries, e))?;
    let n = base.len() / a.dim;
    let queries: Vec<&[f32]> = queries.chunks_exact(a.dim).take(a.max_queries).collect();
    let mut truth: Option<Vec<u64>> = None;
    let mut names = a.indexes.clone();
    // Exact search runs first: its answers are the recall reference.
    names.sort_by_key(|s| s != "flat");
    if !names.iter().any(|s| s == "flat") {
        names.insert(0, "flat".into());
    }
    for name in &names {
        let bar = ProgressBar::new(n as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{msg:6} {bar:40} {pos}/{len} {per_sec} eta {eta}")
        {
            bar.set_style(style);
        }
        bar.set_message(name.clone());
        let t = Instant::now();
        let invalid = |message: String| Failure {
            code: ErrorCode::InvalidRequest,
            message,
        };
        // (index, the efSearch values to time it with; none for the exact indexes)
        let (mut index, efs): (Box<dyn Index>, Vec<Option<usize>>) = match name.as_str() {
            "flat" | "quant" => {
                let mut index: Box<dyn Index> = if name == "flat" {
                    Box::new(FlatIndex::new(a.dim))
                } else {
                    Box::new(QuantIndex::with_rerank(a.dim, a.rerank))
                };
                for (i, row) in base.chunks_exact(a.dim).enumerate() {
                    index
                        .add(i as u64, row)
                        .map_err(|e| invalid(format!("row {i}: {e}")))?;
                    if i % 4096 == 0 {
                        bar.set_position(i as u64);
                    }
                }
                (index, vec![None])
            }
            "hnsw" => {
                let params = HnswParams {
                    m: a.m,
                    m0: a.m0,
                    ef_construction: a.ef_construction,
                    ..HnswParams::default()
                };
                let ids: Vec<u64> = (0..n as u64).collect();
                let progress = |i: usize| bar.set_position(i as u64);
                let index = match &a.graph {
                    Some(path) if path.exists() => {
                        let file = std::fs::File::open(path).map_err(|e| io_failure(path, e))?;
                        HnswIndex::read_graph(
                            a.dim,
                            params,
                            &ids,
                            &base,
                            &mut std::io::BufReader::new(file),
                        )
                        .map_err(|e| io_failure(path, e))?
                    }
                    _ => {
                        let index = HnswIndex::build(
                            a.dim,
                            params,
                            &ids,
                            &base,
                            a.build_threads,
                            &progress,
                        )
                        .map_err(|e| invalid(e.to_string()))?;
                        if let Some(path) = &a.graph {
                            let file =
                                std::fs::File::create(path).map_err(|e| io_failure(path, e))?;
                            let mut out = std::io::BufWriter::new(file);
                            index
                                .write_graph(&mut out)
                                .and_then(|()| std::io::Write::flush(&mut out))
                                .map_err(|e| io_failure(path, e))?;
                        }
                        index
                    }
                };
                (Box::new(index), a.ef.iter().map(|&ef| Some(ef)).collect())
            }
            other => return Err(invalid(format!("unknown index {other}"))),
        };
        bar.finish_and_clear();
        let build = t.elapsed().as_secs_f64();
        for ef in efs {
            if let Some(ef) = ef {
                index.set_ef_search(ef);
            }
            let mut times = Vec::with_capacity(queries.len());
            let mut top1 = Vec::with_capacity(queries.len());
            for q in &queries {
                let t = Instant::now();
                let hits = index.search(q, a.k);
                times.push(t.elapsed().as_secs_f64() * 1e3);
                top1.push(hits.first().map_or(u64::MAX, |h| h.id));
            }
            let recall = match &truth {
                Some(t) => {
                    t.iter().zip(&top1).filter(|(x, y)| x == y).count() as f64
                        / t.len().max(1) as f64
                }
                None => 1.0,
            };
            if truth.is_none() {
                truth = Some(top1);
            }
            let line = json!({
                "index": name, "n": n, "dim": a.dim, "m": a.m, "m0": a.m0, "queries": queries.len(), "ef": ef,
                "build_threads": if ef.is_some() { a.build_threads } else { 1 },
                "build_s": build, "median_ms": median(&mut times), "p99_ms": percentile(&mut times, 0.99),
                "recall_at_1": recall, "bytes_per_vector": index.bytes_per_vector(),
                "process_peak_rss_mib": peak_rss_mib(),
            });
            if a.json {
                println!("{line}");
            } else {
                println!("{line:#}");
            }
        }
        // Free one index before building the next (1M x 128 is half a gigabyte each).
        drop(index);
    }
    Ok(())
}

/// `consentry bench`.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Whole face pipeline per photo (decode + detect + align + embed), one image at a time,
    /// exactly as `compare` and verification run it.
    Pipeline(PipelineArgs),
    /// Gallery search: build time, median ms per query (1 thread), recall@1 against exact
    /// search and bytes per vector, for each index.
    Search(SearchArgs),
    /// Write synthetic gallery and query matrices (clustered like face embeddings, or random).
    Gen(GenArgs),
    /// The audit log: append time, inclusion and consistency proofs at a given log size, and
    /// (with --probe) the append's share of a verification.
    Audit(crate::bench_audit::AuditBenchArgs),
    /// Passes: size in characters, QR version at error correction M, issue and verify time,
    /// and the time to read one back from a PNG of its QR code.
    Pass(PassBenchArgs),
    /// Key rotation: the time to re-wrap every data key of `--subjects` subjects under a new
    /// key-encryption key, and verification throughput before and during the rotation, in the
    /// same process.
    Rotate(crate::bench_rotate::RotateBenchArgs),
    /// Voice: decode, fbank and embedding time per recording (median of --runs, one thread),
    /// and the same cut to 3 s and 10 s.
    Voice(crate::voice_cmds::VoiceBenchArgs),
}

impl BenchCommand {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        match self {
            BenchCommand::Pipeline(a) => a.json,
            BenchCommand::Search(a) => a.json,
            BenchCommand::Gen(_) => false,
            BenchCommand::Audit(a) => a.json,
            BenchCommand::Pass(a) => a.json,
            BenchCommand::Rotate(a) => a.json,
            BenchCommand::Voice(a) => a.json,
        }
    }
}

/// `consentry bench search`.
#[derive(Args)]
pub struct SearchArgs {
    /// Gallery: raw little-endian f32, n x dim.
    #[arg(long)]
    base: PathBuf,
    /// Queries: raw little-endian f32, q x dim.
    #[arg(long)]
    queries: PathBuf,
    /// Vector dimension.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// Neighbours per query.
    #[arg(long, default_value_t = 1)]
    k: usize,
    /// Indexes to run: flat, quant, hnsw (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "flat,quant,hnsw")]
    indexes: Vec<String>,
    /// HNSW links per node on the upper levels.
    #[arg(long, default_value_t = HnswParams::default().m)]
    m: usize,
    /// HNSW links per node on level 0 (see `HnswParams::m0`).
    #[arg(long, default_value_t = HnswParams::default().m0)]
    m0: usize,
    /// HNSW candidate list while building.
    #[arg(long, default_value_t = 128)]
    ef_construction: usize,
    /// HNSW candidate list while searching; several (comma-separated) are each timed on the
    /// same graph.
    #[arg(long, value_delimiter = ',', default_value = "64")]
    ef: Vec<usize>,
    /// Threads inserting into the HNSW graph while it is built (queries always use one).
    #[arg(long, default_value_t = 1)]
    build_threads: usize,
    /// HNSW graph file: read when it exists (the build time printed is then the reading
    /// time), else written after the build; for timing searches on a large graph again.
    #[arg(long)]
    graph: Option<PathBuf>,
    /// Candidates re-ranked exactly by the quantised index.
    #[arg(long, default_value_t = 32)]
    rerank: usize,
    /// At most this many queries are timed.
    #[arg(long, default_value_t = 1000)]
    max_queries: usize,
    /// Print JSON lines.
    #[arg(long)]
    pub json: bool,
}

/// `consentry bench gen`.
#[derive(Args)]
pub struct GenArgs {
    /// Gallery size (rounded down to whole identities for clustered data).
    #[arg(long)]
    n: usize,
    /// Gallery samples per identity (clustered data).
    #[arg(long, default_value_t = 5)]
    per_identity: usize,
    /// Number of queries.
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Dimension.
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// `clustered` (noisy samples around identity centres) or `random` (unit vectors).
    #[arg(long, default_value = "clustered")]
    kind: String,
    /// Noise norm of a clustered sample around its centre (0.8: genuine cosine about 0.6).
    #[arg(long, default_value_t = 0.8)]
    noise: f32,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Gallery output file.
    #[arg(long)]
    out_base: PathBuf,
    /// Query output file.
    #[arg(long)]
    out_queries: PathBuf,
}

/// `consentry bench pipeline`.
#[derive(Args)]
pub struct PipelineArgs {
    /// Images to time.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Passes over the image list (the first, warm-up pass is not counted).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

pub(crate) fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(0.0)
}

pub fn pipeline(engine: &FaceEngine, a: &PipelineArgs) -> Result<(), Failure> {
    let mut total = Vec::new();
    let mut stages: [Vec<f64>; 4] = Default::default();
    let mut failures = 0usize;
    for pass in 0..=a.repeat.max(1) {
        for path in &a.images {
            let t0 = Instant::now();
            let Ok(img) = engine.read(path) else {
                failures += usize::from(pass == 0);
                continue;
            };
            let t1 = Instant::now();
            let dets = engine.detect_quick(&img)?;
            let t2 = Instant::now();
            let Some(idx) = consentry_face::quality::primary(&dets, img.width(), img.height())
            else {
                failures += usize::from(pass == 0);
                continue;
            };
            let face = engine.align(&img, &dets[idx])?;
            let t3 = Instant::now();
            engine.embed_aligned(&face)?;
            let t4 = Instant::now();
            if pass == 0 {
                continue;
            }
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
            total.push(ms(t0, t4));
            for (s, (x, y)) in stages
                .iter_mut()
                .zip([(t0, t1), (t1, t2), (t2, t3), (t3, t4)])
            {
                s.push(ms(x, y));
            }
        }
    }
    let [mut dec, mut det, mut ali, mut emb] = stages;
    let result = json!({
        "images": a.images.len(),
        "failures": failures,
        "timed_runs": total.len(),
        "median_ms": median(&mut total),
        "p90_ms": percentile(&mut total, 0.9),
        "stage_median_ms": {
            "decode": median(&mut dec), "detect": median(&mut det),
            "align": median(&mut ali), "embed": median(&mut emb),
        },
        "flip": engine.flip(),
        "cpu": crate::cpu_summary(),
    });
    if a.json {
        println!("{result}");
    } else {
        println!("{result:#}");
    }
    Ok(())
}

/// `consentry bench pass`.
#[derive(Args)]
pub struct PassBenchArgs {
    /// Passes timed.
    #[arg(long, default_value_t = 2000)]
    n: usize,
    /// EdDSA or ES256.
    #[arg(long, default_value = "EdDSA")]
    alg: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Pass size and speed, on passes shaped like the server's (a tenant-long issuer, a 32-digit
/// pseudonym, a site name).
pub fn pass(a: &PassBenchArgs) -> Result<(), Failure> {
    use consentry_pass::{issue, pseudonym, qr, verify, Check, PassClaims, TrustList};
    let fail = |e: consentry_pass::PassError| Failure {
        code: consentry_types::HasErrorCode::code(&e),
        message: e.to_string(),
    };
    let key = match a.alg.as_str() {
        "ES256" => consentry_pass::PassKey::p256_from_bytes(&[7; 32]),
        "EdDSA" => Some(consentry_pass::PassKey::Ed25519(
            ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
        )),
        _ => None,
    }
    .ok_or_else(|| Failure {
        code: ErrorCode::InvalidRequest,
        message: "--alg is EdDSA or ES256".into(),
    })?;
    let issuer = format!("consentry/{}", "0123456789abcdef".repeat(2));
    let trust = TrustList::new(&issuer, &[key.public()]);
    let now = 1_800_000_000;
    let claims = |i: usize| PassClaims {
        issuer: issuer.clone(),
        subject: pseudonym(&[3; 32], &format!("subject-{i}"), "site-12"),
        verifier: "site-12".into(),
        access: "site-12".into(),
        issued_at: now,
        not_before: now,
        expires_at: now + 30 * 86_400,
        pass_id: format!("{i:032x}"),
    };
    let n = a.n.max(1);
    let (mut issue_us, mut verify_us, mut chars) = (Vec::new(), Vec::new(), Vec::new());
    let mut passes = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let p = issue(&claims(i), &key).map_err(fail)?;
        issue_us.push(t.elapsed().as_secs_f64() * 1e6);
        chars.push(p.len() as f64);
        passes.push(p);
    }
    let check = Check {
        now,
        verifier: Some("site-12"),
        revocations: None,
        max_list_age: 0,
    };
    for p in &passes {
        let t = Instant::now();
        verify(p, &trust, &check).map_err(fail)?;
        verify_us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let versions: Vec<i16> = passes
        .iter()
        .take(50)
        .map(|p| qr::version(p))
        .collect::<Result<_, _>>()
        .map_err(fail)?;
    let png = qr::png(&passes[0], 4).map_err(fail)?;
    let mut read_ms = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let found = qr::read(&png).map_err(|e| Failure {
            code: ErrorCode::Internal,
            message: e.to_string(),
        })?;
        read_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if found.first() != passes.first() {
            return Err(Failure {
                code: ErrorCode::Internal,
                message: "the QR code read back differs".into(),
            });
        }
    }
    let result = json!({
        "passes": n,
        "alg": a.alg,
        "chars_median": median(&mut chars),
        "chars_max": chars.iter().copied().fold(0.0, f64::max),
        "qr_version_ec_m": {"min": versions.iter().min(), "max": versions.iter().max()},
        "issue_us_median": median(&mut issue_us),
        "verify_us_median": median(&mut verify_us),
        "verify_us_p99": percentile(&mut verify_us, 0.99),
        "qr_png_bytes": png.len(),
        "qr_read_ms_median": median(&mut read_ms),
    });
    if a.json {
        println!("{result}");
    } else {
        println!("{result:#}");
    }
    Ok(())
}
