//! `consentry bench rotate`: what a rotation of the key-encryption key costs.
//!
//! On a tenant of its own, in the database given: `--subjects` subjects with data keys, and one
//! person enrolled from `--probe`. Verifications of that person run for `--seconds` with no
//! rotation (the peer), then again while every data key is re-wrapped under a new epoch; both
//! rates come from the same process, so their ratio is the rotation's cost to live traffic.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use consentry_core::{Core, Principal, Purpose};
use consentry_types::ErrorCode;
use serde_json::json;

use crate::bench_audit::bar;
use crate::server_cmds::{fail, open, runtime, StoreArgs};
use crate::{EngineArgs, Failure};

/// `consentry bench rotate`.
#[derive(Args)]
pub struct RotateBenchArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Subjects (data keys) to re-wrap.
    #[arg(long, default_value_t = 100_000)]
    subjects: u64,
    /// The photo verified during the run (enrolled, then verified against itself).
    #[arg(long)]
    probe: PathBuf,
    /// Seconds of verification without a rotation, for the peer rate.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Verifications in flight at once.
    #[arg(long, default_value_t = 2)]
    concurrency: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn rotate(engine: &EngineArgs, a: &RotateBenchArgs) -> Result<(), Failure> {
    runtime()?.block_on(run(engine, a))
}

/// Verifies in `concurrency` loops until `stop`; returns how many succeeded.
async fn verify_until(
    core: Arc<Core>,
    admin: Arc<Principal>,
    subject: Arc<String>,
    image: Arc<Vec<u8>>,
    concurrency: usize,
    stop: Arc<AtomicBool>,
) -> Result<u64, Failure> {
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (core, admin, subject, image, stop, done) = (
            core.clone(),
            admin.clone(),
            subject.clone(),
            image.clone(),
            stop.clone(),
            done.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let d = core.verify(&admin, &subject, image.to_vec()).await?;
                if d.allow {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<(), consentry_core::CoreError>(())
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| Failure {
                code: ErrorCode::Internal,
                message: format!("verify task: {e}"),
            })?
            .map_err(fail)?;
    }
    Ok(done.load(Ordering::Relaxed))
}

async fn run(engine: &EngineArgs, a: &RotateBenchArgs) -> Result<(), Failure> {
    let core = Arc::new(open(&a.store, engine).await?);
    let name = format!("bench-rotate-{}", consentry_core::new_id());
    let key = zeroize::Zeroizing::new(core.bootstrap_tenant(&name).await.map_err(fail)?.1);
    let admin = Arc::new(core.authenticate(&key).await.map_err(fail)?);
    let image = Arc::new(std::fs::read(&a.probe).map_err(|e| Failure {
        code: ErrorCode::FileUnreadable,
        message: format!("{}: {e}", a.probe.display()),
    })?);
    let subject = core.create_subject(&admin).await.map_err(fail)?;
    core.grant_consent(&admin, &subject, Purpose::Verification, 30)
        .await
        .map_err(fail)?;
    core.enrol_face(&admin, &subject, Purpose::Verification, image.to_vec())
        .await
        .map_err(fail)?;
    let subject = Arc::new(subject);

    let b = bar(a.subjects, "subjects");
    let t = Instant::now();
    core.bench_create_subjects(&admin, a.subjects, &|n| b.set_position(n))
        .await
        .map_err(fail)?;
    b.finish_and_clear();
    let fill_s = t.elapsed().as_secs_f64();

    // The peer: verification with no rotation.
    let stop = Arc::new(AtomicBool::new(false));
    let t = Instant::now();
    let peer = tokio::spawn(verify_until(
        core.clone(),
        admin.clone(),
        subject.clone(),
        image.clone(),
        a.concurrency,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(a.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let peer_n = peer.await.map_err(|e| Failure {
        code: ErrorCode::Internal,
        message: format!("verify: {e}"),
    })??;
    let peer_rate = peer_n as f64 / t.elapsed().as_secs_f64();

    // The same verification while the rotation runs.
    let stop = Arc::new(AtomicBool::new(false));
    let during = tokio::spawn(verify_until(
        core.clone(),
        admin.clone(),
        subject.clone(),
        image.clone(),
        a.concurrency,
        stop.clone(),
    ));
    let b = bar(a.subjects, "re-wrap");
    let t = Instant::now();
    let r = core
        .rotate_keys(&|done, total| {
            b.set_length(total);
            b.set_position(done);
        })
        .await
        .map_err(fail)?;
    let rotate_s = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let during_n = during.await.map_err(|e| Failure {
        code: ErrorCode::Internal,
        message: format!("verify: {e}"),
    })??;
    let during_rate = during_n as f64 / t.elapsed().as_secs_f64();
    b.finish_and_clear();
    let result = json!({
        "backend": if a.store.db.starts_with("sqlite") { "sqlite" } else { "postgres" },
        "subjects_filled": a.subjects,
        "fill_seconds": fill_s,
        "rewrapped": r.rewrapped,
        "rotation_seconds": rotate_s,
        "keys_per_second": r.rewrapped as f64 / rotate_s,
        "epoch": r.epoch,
        "destroyed": r.destroyed,
        "verify_per_second_without_rotation": peer_rate,
        "verify_per_second_during_rotation": during_rate,
        "verify_during_over_without": during_rate / peer_rate,
        "concurrency": a.concurrency,
    });
    if a.json {
        println!("{result}");
    } else {
        println!("{result:#}");
    }
    core.close().await;
    Ok(())
}
