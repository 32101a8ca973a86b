//! `consentry bench`: timing runs whose figures go into docs/benchmarks.md.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use consentry_face::FaceEngine;
use serde_json::json;

use crate::Failure;

/// `consentry bench`.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Whole face pipeline per photo (decode + detect + align + embed), one image at a time,
    /// exactly as `compare` and verification run it.
    Pipeline(PipelineArgs),
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

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else {
        v[v.len() / 2]
    }
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(0.0)
}

pub fn run(engine: &FaceEngine, cmd: &BenchCommand) -> Result<(), Failure> {
    let BenchCommand::Pipeline(a) = cmd;
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
    });
    if a.json {
        println!("{result}");
    } else {
        println!("{result:#}");
    }
    Ok(())
}
