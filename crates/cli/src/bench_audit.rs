//! `consentry bench audit`: what the audit log costs and how its proofs scale.
//!
//! On a tenant of its own, in the database given: the time one logged action spends appending
//! (an append in a write transaction of its own, the work logging adds to an action), the log
//! filled to `--entries`, then inclusion and consistency proofs read from the database and
//! checked against a signed checkpoint (their length, and the time to read and to check
//! them). With `--probe`, a 1:1 verification of that photo is timed in the same process, so
//! the append's share of a verification is a ratio of two figures from one run.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use consentry_audit::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use consentry_audit::Checkpoint;
use consentry_core::{Core, Purpose};
use consentry_types::ErrorCode;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::bench_cmds::{median, percentile};
use crate::server_cmds::{fail, open, runtime, StoreArgs};
use crate::{EngineArgs, Failure};

/// `consentry bench audit`.
#[derive(Args)]
pub struct AuditBenchArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// An admin key of the tenant whose log to fill (from `consentry admin bootstrap`, so that
    /// `consentry audit verify` can then be timed on the same log); default: a new tenant.
    #[arg(long, env = "CONSENTRY_API_KEY", hide_env_values = true)]
    key: Option<String>,
    /// Entries in the bench tenant's log when the proofs are timed.
    #[arg(long, default_value_t = 100_000)]
    entries: u64,
    /// Appends timed one by one, each in a transaction of its own, at the start and again at
    /// the end (the rest of the log is filled 1000 entries a transaction).
    #[arg(long, default_value_t = 2000)]
    timed: u64,
    /// Proofs of each kind read and checked (random entries and sizes, seeded).
    #[arg(long, default_value_t = 1000)]
    proofs: usize,
    /// A photo to enrol and verify against, to compare the append with a verification.
    #[arg(long)]
    probe: Option<PathBuf>,
    /// Verifications timed (with --probe).
    #[arg(long, default_value_t = 200)]
    verifies: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn bar(n: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(n);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:8} {bar:40} {pos}/{len} {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar
}

/// A small deterministic generator for the entries and sizes proved.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n.max(1)
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn internal(message: String) -> Failure {
    Failure {
        code: ErrorCode::Internal,
        message,
    }
}

pub fn audit(engine: &EngineArgs, a: &AuditBenchArgs) -> Result<(), Failure> {
    runtime()?.block_on(run(engine, a))
}

async fn run(engine: &EngineArgs, a: &AuditBenchArgs) -> Result<(), Failure> {
    let core = open(&a.store, engine).await?;
    let admin_key = match &a.key {
        Some(k) => zeroize::Zeroizing::new(k.clone()),
        None => {
            let name = format!("bench-audit-{}", consentry_core::new_id());
            zeroize::Zeroizing::new(core.bootstrap_tenant(&name).await.map_err(fail)?.1)
        }
    };
    let admin = core.authenticate(&admin_key).await.map_err(fail)?;
    let tenant = admin.tenant.clone();

    // Verification first, on a short log, for the append's share of it.
    let verify_ms = match &a.probe {
        Some(path) => Some(time_verify(&core, &admin, path, a.verifies).await?),
        None => None,
    };

    let key = core.audit_verifier_key(&tenant).map_err(fail)?;
    let size = |note: String| {
        Checkpoint::open(&note, &key).map_err(|e| internal(format!("checkpoint: {e}")))
    };
    let start = size(core.audit_checkpoint(&admin).await.map_err(fail)?)?.size;
    let to_add = a.entries.saturating_sub(start);
    let timed = a.timed.min(to_add / 2);
    let mut first = append_one(&core, &tenant, timed).await?;
    let fill = bar(to_add - 2 * timed, "fill");
    let t_fill = Instant::now();
    let mut left = to_add - 2 * timed;
    while left > 0 {
        let n = left.min(1000);
        core.bench_audit_append(&tenant, n).await.map_err(fail)?;
        left -= n;
        fill.inc(n);
    }
    fill.finish_and_clear();
    let fill_s = t_fill.elapsed().as_secs_f64();
    let mut last = append_one(&core, &tenant, timed).await?;

    let cp = size(core.audit_checkpoint(&admin).await.map_err(fail)?)?;
    let n = cp.size;

    let mut rng = SplitMix(7);
    let (mut incl_read, mut incl_check, mut incl_len) = (Vec::new(), Vec::new(), 0usize);
    let proofs = bar(2 * a.proofs as u64, "proofs");
    for _ in 0..a.proofs {
        let i = rng.below(n);
        let t = Instant::now();
        let entry = core.audit_entries(&admin, i, i + 1).await.map_err(fail)?;
        let proof = core.audit_inclusion(&admin, i, n).await.map_err(fail)?;
        incl_read.push(ms(t));
        let Some((_, bytes)) = entry.first() else {
            return Err(internal(format!("entry {i} missing")));
        };
        let t = Instant::now();
        let ok = verify_inclusion(i, n, &leaf_hash(bytes.as_bytes()), &proof, &cp.root);
        incl_check.push(ms(t) * 1e3);
        if !ok {
            return Err(internal(format!(
                "inclusion proof of entry {i} does not verify"
            )));
        }
        incl_len = incl_len.max(proof.len());
        proofs.inc(1);
    }
    let (mut cons_read, mut cons_check, mut cons_len) = (Vec::new(), Vec::new(), 0usize);
    for _ in 0..a.proofs {
        // From an earlier size m in 1..n (the proof from n to n is empty), against the root
        // the log had at m.
        let m = 1 + rng.below(n.saturating_sub(1));
        let old_root = core.audit_root_at(&admin, m).await.map_err(fail)?;
        let t = Instant::now();
        let proof = core.audit_consistency(&admin, m, n).await.map_err(fail)?;
        cons_read.push(ms(t));
        let t = Instant::now();
        let ok = verify_consistency(m, n, &old_root, &cp.root, &proof);
        cons_check.push(ms(t) * 1e3);
        if !ok {
            return Err(internal(format!(
                "consistency proof {m} -> {n} does not verify"
            )));
        }
        cons_len = cons_len.max(proof.len());
        proofs.inc(1);
    }
    proofs.finish_and_clear();

    let append_median = median(&mut first);
    let result = json!({
        "backend": if a.store.db.starts_with("sqlite") { "sqlite" } else { "postgres" },
        "entries": n,
        "appended": to_add,
        "fill_seconds_1000_a_transaction": fill_s,
        "append_ms_small_log": {"median": append_median, "p99": percentile(&mut first, 0.99)},
        "append_ms_full_log": {"median": median(&mut last), "p99": percentile(&mut last, 0.99)},
        "inclusion": {"max_hashes": incl_len, "read_ms_median": median(&mut incl_read),
            "check_us_median": median(&mut incl_check), "check_us_p99": percentile(&mut incl_check, 0.99)},
        "consistency": {"max_hashes": cons_len, "read_ms_median": median(&mut cons_read),
            "check_us_median": median(&mut cons_check), "check_us_p99": percentile(&mut cons_check, 0.99)},
        "verify_ms_median": verify_ms,
        "append_share_of_verify": verify_ms.map(|v| append_median / v),
    });
    if a.json {
        println!("{result}");
    } else {
        println!("{result:#}");
    }
    Ok(())
}

/// `n` appends, each in a write transaction of its own, timed one by one (ms).
async fn append_one(core: &Core, tenant: &str, n: u64) -> Result<Vec<f64>, Failure> {
    let mut times = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    for _ in 0..n {
        let t = Instant::now();
        core.bench_audit_append(tenant, 1).await.map_err(fail)?;
        times.push(ms(t));
    }
    Ok(times)
}

async fn time_verify(
    core: &Core,
    admin: &consentry_core::Principal,
    path: &PathBuf,
    n: usize,
) -> Result<f64, Failure> {
    let image = std::fs::read(path).map_err(|e| Failure {
        code: ErrorCode::FileUnreadable,
        message: format!("{}: {e}", path.display()),
    })?;
    let subject = core.create_subject(admin).await.map_err(fail)?;
    core.grant_consent(admin, &subject, Purpose::Verification, 30)
        .await
        .map_err(fail)?;
    core.enrol_face(admin, &subject, Purpose::Verification, image.clone())
        .await
        .map_err(fail)?;
    let mut times = Vec::with_capacity(n);
    let b = bar(n as u64 + 5, "verify");
    for i in 0..n + 5 {
        let t = Instant::now();
        let d = core
            .verify(admin, &subject, image.clone())
            .await
            .map_err(fail)?;
        if i >= 5 {
            times.push(ms(t));
        }
        if !d.allow {
            return Err(internal("the probe did not verify against itself".into()));
        }
        b.inc(1);
    }
    b.finish_and_clear();
    Ok(median(&mut times))
}
