//! ONNX Runtime: locating the pinned assets, the one environment per process, session pools.
//!
//! The runtime library and the models are fetched and prepared by `setup/fetch.py` into the
//! assets directory (`$CONSENTRY_ASSETS`, default `~/.cache/consentry/assets`). The expected
//! sha256 of each file is read from the same `setup/manifest.tsv`, compiled in, and checked when
//! a model is loaded, so the engine never runs a model other than the pinned one.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use crate::FaceError;

const MANIFEST: &str = include_str!("../../../setup/manifest.tsv");

/// Where the runtime library and the prepared models are.
#[derive(Clone, Debug)]
pub struct Assets {
    /// The assets directory.
    pub dir: PathBuf,
}

impl Assets {
    /// `$CONSENTRY_ASSETS`, else `~/.cache/consentry/assets`.
    pub fn locate() -> Assets {
        if let Some(dir) = std::env::var_os("CONSENTRY_ASSETS") {
            return Assets {
                dir: PathBuf::from(dir),
            };
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        Assets {
            dir: home.join(".cache/consentry/assets"),
        }
    }

    /// A file under the assets directory, e.g. `models/sface_2021dec_fp32.onnx`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// The ONNX Runtime shared library.
    pub fn runtime_library(&self) -> PathBuf {
        self.path("lib/libonnxruntime.so")
    }

    /// Reads a pinned asset and checks its sha256 against the manifest.
    pub fn read_checked(&self, rel: &str) -> Result<Vec<u8>, FaceError> {
        let path = self.path(rel);
        let bytes = std::fs::read(&path).map_err(|e| {
            FaceError::ModelUnavailable(format!(
                "{}: {e}; run `python3 setup/fetch.py` (or set CONSENTRY_ASSETS)",
                path.display()
            ))
        })?;
        let expected = expected_sha256(rel).ok_or_else(|| {
            FaceError::ModelUnavailable(format!("{rel} is not listed in setup/manifest.tsv"))
        })?;
        let actual = sha256_hex(&bytes);
        if actual != expected {
            return Err(FaceError::ModelUnavailable(format!(
                "{} has sha256 {actual}, expected {expected}; delete it and run \
                 `python3 setup/fetch.py`",
                path.display()
            )));
        }
        Ok(bytes)
    }
}

/// The manifest's sha256 for an asset path.
pub fn expected_sha256(rel: &str) -> Option<&'static str> {
    MANIFEST
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|cols| cols.len() == 5 && cols[3] == rel)
        .map(|cols| cols[4])
}

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// The process's one ONNX Runtime environment, loading the shared library on first use.
pub fn environment(assets: &Assets) -> Result<&'static Environment, FaceError> {
    let env = ENVIRONMENT.get_or_init(|| {
        let lib = assets.runtime_library();
        if !lib.exists() {
            return Err(format!(
                "ONNX Runtime library not found at {}; run `python3 setup/fetch.py`",
                lib.display()
            ));
        }
        // The library is native code run in-process: it is checked against the manifest like
        // the models, so a library swapped into the assets directory is refused. (The check and
        // the load are two steps: the directory must be writable only by the service's user.)
        assets
            .read_checked("lib/libonnxruntime.so")
            .map_err(|e| e.to_string())?;
        ort::init_from(&lib)
            .map_err(|e| format!("cannot load {}: {e}", lib.display()))?
            .with_name("consentry")
            .build()
            .map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))
    });
    env.as_ref()
        .map_err(|e| FaceError::ModelUnavailable(e.clone()))
}

/// A pool of sessions of one model. `Session::run` needs `&mut`, so concurrent callers each
/// take a session from the pool (creating one when none is idle) and give it back afterwards.
pub struct SessionPool {
    model: Vec<u8>,
    threads: usize,
    env: &'static Environment,
    idle: Mutex<Vec<Session>>,
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionPool")
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl SessionPool {
    /// Loads (and checks) the model and creates the first session, so errors surface at start.
    pub fn new(assets: &Assets, rel: &str, threads: usize) -> Result<Self, FaceError> {
        let env = environment(assets)?;
        SessionPool::from_bytes(env, assets.read_checked(rel)?, threads)
    }

    fn from_bytes(
        env: &'static Environment,
        model: Vec<u8>,
        threads: usize,
    ) -> Result<Self, FaceError> {
        let pool = SessionPool {
            model,
            threads: threads.max(1),
            env,
            idle: Mutex::new(Vec::new()),
        };
        let first = pool.create()?;
        pool.put(first);
        Ok(pool)
    }

    /// A model the operator configured by path (not one of the pinned assets): read as it is,
    /// its sha256 returned so the caller can log which file it runs.
    pub fn from_file(
        assets: &Assets,
        path: &Path,
        threads: usize,
    ) -> Result<(Self, String), FaceError> {
        let env = environment(assets)?;
        let model = std::fs::read(path)
            .map_err(|e| FaceError::ModelUnavailable(format!("{}: {e}", path.display())))?;
        let digest = sha256_hex(&model);
        Ok((SessionPool::from_bytes(env, model, threads)?, digest))
    }

    fn create(&self) -> Result<Session, FaceError> {
        let session = Session::builder(self.env)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| FaceError::Inference(e.to_string()))?
            .with_intra_threads(self.threads)
            .map_err(|e| FaceError::Inference(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| FaceError::Inference(e.to_string()))?
            .with_intra_op_spinning(false)
            .map_err(|e| FaceError::Inference(e.to_string()))?
            .commit_from_memory(&self.model)?;
        Ok(session)
    }

    fn put(&self, s: Session) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(s);
        }
    }

    /// Runs `f` with exclusive use of one session.
    pub fn with<R>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R, FaceError>,
    ) -> Result<R, FaceError> {
        let taken = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut session = match taken {
            Some(s) => s,
            None => self.create()?,
        };
        let out = f(&mut session);
        self.put(session);
        out
    }
}
