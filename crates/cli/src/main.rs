//! `consentry`: the command-line face engine (detect, embed, compare, eval), the server
//! (`serve`, `admin`) and the audit log's offline verifier (`audit`).
//!
//! Every command prints JSON with `--json`. Errors carry a stable code from
//! `consentry_types::ErrorCode`; single-image commands exit with the code's status
//! (2 bad input, 3 face quality, 4 setup, 70 internal), batch commands report errors per line.
#![forbid(unsafe_code)]

mod audit_cmds;
mod bench_audit;
mod bench_cmds;
mod bench_rotate;
mod face_cmds;
mod pad_cmds;
mod pass_cmds;
mod plot;
mod remote;
mod server_cmds;
mod voice_cmds;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use consentry_face::{runtime::Assets, EngineConfig, FaceEngine, FaceError, ModelSet};
use consentry_types::{ErrorBody, ErrorCode, HasErrorCode};

#[derive(Parser)]
#[command(name = "consentry", version, about = "Consent-first face verification")]
struct Cli {
    #[command(flatten)]
    engine: EngineArgs,
    #[command(subcommand)]
    command: Command,
}

/// Engine options shared by every command.
#[derive(Args, Clone)]
pub struct EngineArgs {
    /// Directory with the runtime library and models (default: $CONSENTRY_ASSETS or
    /// ~/.cache/consentry/assets, filled by `python3 setup/fetch.py`).
    #[arg(long, global = true)]
    assets: Option<PathBuf>,
    /// ONNX Runtime threads per image.
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    /// Flip test-time augmentation: embed the mirrored crop too (twice the embedding cost).
    #[arg(long, global = true)]
    flip: bool,
    /// Networks: `standard` (YuNet + SFace as published, permissive licences), `standard-int8`
    /// (the same with SFace quantised to int8, 7-bit weights: the same LFW accuracy on every
    /// CPU, half the memory, embeddings 1.4x faster on AVX2 and 1.9x with VNNI; templates are
    /// not interchangeable with `standard`'s) or `insightface` (SCRFD +
    /// w600k_mbf, non-commercial research use only; needs --accept-noncommercial-licence).
    /// Default: `standard` for the face commands, `standard-int8` for `serve`.
    #[arg(long, global = true, value_enum)]
    models: Option<Models>,
    /// Acknowledge that the InsightFace weights may be used for non-commercial research only.
    #[arg(long, global = true)]
    accept_noncommercial_licence: bool,
    /// Longest side, in pixels, of the quick detection pass that finds the primary face for
    /// verification and comparison (the full pass, for enrolment, uses 640). Smaller is
    /// cheaper; docs/benchmarks.md measures what it does to the embeddings.
    #[arg(long, global = true, default_value_t = consentry_face::detect::DetectorConfig::default().quick_side,
          value_parser = clap::value_parser!(u32).range(64..=640))]
    detect_side: u32,
}

/// `--models` values.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Models {
    Standard,
    StandardInt8,
    Insightface,
}

#[derive(Subcommand)]
enum Command {
    /// Find faces: boxes, five landmarks and scores.
    Detect(face_cmds::DetectArgs),
    /// Print the embedding of the largest face of each image (one line per image).
    Embed(face_cmds::EmbedArgs),
    /// Write the aligned 112x112 crop of each image's primary face.
    Align(face_cmds::AlignArgs),
    /// Compare two photos, or every pair listed in a file.
    Compare(face_cmds::CompareArgs),
    /// Measure verification accuracy on an LFW-format pairs file.
    Eval(face_cmds::EvalArgs),
    /// Timing runs for docs/benchmarks.md.
    #[command(subcommand)]
    Bench(bench_cmds::BenchCommand),
    /// Run the HTTP server.
    Serve(server_cmds::ServeArgs),
    /// Administration without a browser.
    #[command(subcommand)]
    Admin(server_cmds::AdminCommand),
    /// The audit log: save checkpoints, export, verify offline.
    #[command(subcommand)]
    Audit(audit_cmds::AuditCommand),
    /// Passes: issue, save the trust and revocation lists, verify offline.
    #[command(subcommand)]
    Pass(pass_cmds::PassCommand),
    /// Presentation-attack detection (liveness), measured offline.
    #[command(subcommand)]
    Pad(pad_cmds::PadCommand),
    /// Speaker verification offline: embed and compare recordings.
    #[command(subcommand)]
    Voice(voice_cmds::VoiceCommand),
}

impl EngineArgs {
    /// The assets directory these options name.
    pub fn assets(&self) -> Assets {
        self.assets
            .clone()
            .map_or_else(Assets::locate, |dir| Assets { dir })
    }

    /// Loads the face engine these options describe.
    pub fn load(&self) -> Result<FaceEngine, FaceError> {
        self.load_or(Models::Standard)
    }

    /// Loads the engine for the server: the int8 SFace unless `--models` says otherwise (the
    /// server is where throughput and memory count; accuracy is the same, docs/accuracy.md).
    pub fn load_for_server(&self) -> Result<FaceEngine, FaceError> {
        self.load_or(Models::StandardInt8)
    }

    fn load_or(&self, default: Models) -> Result<FaceEngine, FaceError> {
        let mut config = EngineConfig::default();
        if let Some(dir) = &self.assets {
            config.assets = Assets { dir: dir.clone() };
        }
        config.threads = self.threads.max(1);
        config.flip = self.flip;
        config.models = match self.models.unwrap_or(default) {
            Models::Standard => ModelSet::Standard,
            Models::StandardInt8 => ModelSet::StandardInt8,
            Models::Insightface => ModelSet::InsightFace,
        };
        config.accept_noncommercial_licence = self.accept_noncommercial_licence;
        config.detector.quick_side = self.detect_side;
        FaceEngine::load(&config)
    }
}

/// A failure that ends a command: printed as JSON or text, exits with the code's status.
pub struct Failure {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong.
    pub message: String,
}

impl Failure {
    fn report(&self, json: bool) -> ExitCode {
        if json {
            let body = ErrorBody {
                code: self.code,
                message: self.message.clone(),
            };
            println!("{}", serde_json::json!({ "error": body }));
        } else {
            eprintln!("error [{}]: {}", self.code, self.message);
        }
        ExitCode::from(u8::try_from(self.code.exit_code()).unwrap_or(1))
    }
}

impl From<FaceError> for Failure {
    fn from(e: FaceError) -> Self {
        Failure {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

fn main() -> ExitCode {
    if !cpu_supported() {
        eprintln!(
            "error [internal]: this build of consentry needs a CPU with AVX2 and FMA; rebuild for \
             older CPUs with RUSTFLAGS=\"-C target-cpu=x86-64\" cargo build --release"
        );
        return ExitCode::from(70);
    }
    let cli = Cli::parse();
    let json = match &cli.command {
        Command::Detect(a) => a.json,
        Command::Embed(a) => a.json,
        Command::Align(a) => a.json,
        Command::Compare(a) => a.json,
        Command::Eval(a) => a.json,
        Command::Bench(b) => b.json(),
        Command::Serve(_) => false,
        Command::Admin(server_cmds::AdminCommand::Bootstrap(a)) => a.json,
        Command::Admin(server_cmds::AdminCommand::RotateKeys(a)) => a.json,
        Command::Admin(server_cmds::AdminCommand::RekeyTransform(a)) => a.json,
        Command::Audit(a) => a.json(),
        Command::Pass(a) => a.json(),
        Command::Pad(a) => a.json(),
        Command::Voice(a) => a.json(),
    };
    let with_engine = |f: &dyn Fn(&FaceEngine) -> Result<(), Failure>| {
        cli.engine
            .load()
            .map_err(Failure::from)
            .and_then(|engine| f(&engine))
    };
    let result = match &cli.command {
        Command::Detect(a) => with_engine(&|e| face_cmds::detect(e, a)),
        Command::Embed(a) => with_engine(&|e| face_cmds::embed(e, a)),
        Command::Align(a) => with_engine(&|e| face_cmds::align(e, a)),
        Command::Compare(a) => with_engine(&|e| face_cmds::compare(e, a)),
        Command::Eval(a) => with_engine(&|e| face_cmds::eval(e, a)),
        Command::Bench(bench_cmds::BenchCommand::Pipeline(a)) => {
            with_engine(&|e| bench_cmds::pipeline(e, a))
        }
        Command::Bench(bench_cmds::BenchCommand::Search(a)) => bench_cmds::search(a),
        Command::Bench(bench_cmds::BenchCommand::Gen(a)) => bench_cmds::gen(a),
        Command::Bench(bench_cmds::BenchCommand::Audit(a)) => bench_audit::audit(&cli.engine, a),
        Command::Bench(bench_cmds::BenchCommand::Rotate(a)) => bench_rotate::rotate(&cli.engine, a),
        Command::Bench(bench_cmds::BenchCommand::Pass(a)) => bench_cmds::pass(a),
        Command::Bench(bench_cmds::BenchCommand::Voice(a)) => {
            voice_cmds::bench(&cli.engine.assets(), a)
        }
        Command::Pass(a) => pass_cmds::run(a),
        Command::Pad(a) => with_engine(&|e| pad_cmds::run(e, &cli.engine.assets(), a)),
        Command::Voice(a) => voice_cmds::run(&cli.engine.assets(), cli.engine.threads.max(1), a),
        Command::Serve(a) => server_cmds::serve(&cli.engine, a),
        Command::Admin(a) => server_cmds::admin(&cli.engine, a),
        Command::Audit(a) => match audit_cmds::run(a) {
            Ok(true) => Ok(()),
            // The log failed verification: the report is printed; exit 1.
            Ok(false) => return ExitCode::from(1),
            Err(f) => Err(f),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(json),
    }
}

/// The instruction-set extensions the models' speed depends on, for the start-up line and the
/// bench figures (docs/benchmarks.md gives figures per CPU class): ONNX Runtime picks its int8
/// kernels by them at run time, so the same server is about twice as fast with VNNI.
pub(crate) fn cpu_summary() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let mut parts = vec!["AVX2 + FMA"];
        if has!("avx512f") {
            parts.push("AVX-512");
        }
        let (vnni512, vnni256) = (has!("avx512vnni"), has!("avxvnni"));
        if vnni512 {
            parts.push("AVX-512 VNNI");
        }
        if vnni256 {
            parts.push("AVX-VNNI");
        }
        // AMX is not yet detectable on stable Rust; Linux lists it with the CPU's flags. (Every
        // AMX CPU has AVX-512; requiring it keeps an emulated older CPU, which reads the host's
        // flags, from claiming AMX.)
        let amx = has!("avx512f")
            && std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
                info.lines()
                    .find(|l| l.starts_with("flags"))
                    .is_some_and(|l| l.split_whitespace().any(|f| f == "amx_int8"))
            });
        if amx {
            parts.push("AMX-INT8");
        }
        if !(vnni512 || vnni256) {
            parts.push("no VNNI");
        }
        parts.join(", ")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

/// The build targets x86-64-v3 (see .cargo/config.toml): refuse politely on older CPUs.
fn cpu_supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        true
    }
}
