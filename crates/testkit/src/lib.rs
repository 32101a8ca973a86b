//! What every integration test needs, written once: the real face engine (loaded once per
//! test binary), the sample photos, the PostgreSQL URL, and scratch databases — a fresh SQLite
//! file and a fresh PostgreSQL schema — that [`Scratch::finish`] removes again.
//!
//! Nothing here is a stand-in: the engine runs the shipped models, the databases are real.
//! Test code, so failing to set up panics with a message saying what to do.
#![forbid(unsafe_code)]
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use consentry_db::Db;
use consentry_face::{EngineConfig, FaceEngine};

/// The standard engine, loaded once per test binary.
pub fn engine() -> Arc<FaceEngine> {
    static E: OnceLock<Arc<FaceEngine>> = OnceLock::new();
    E.get_or_init(|| {
        Arc::new(
            FaceEngine::load(&EngineConfig::default())
                .unwrap_or_else(|e| panic!("{e}: run python3 setup/fetch.py")),
        )
    })
    .clone()
}

/// A sample photo's bytes: the committed fixtures (tests/fixtures) first, then the photos
/// `setup/fetch.py` put in the assets directory.
pub fn photo(name: &str) -> Vec<u8> {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    let path = if fixture.exists() {
        fixture
    } else {
        EngineConfig::default()
            .assets
            .path(&format!("photos/{name}"))
    };
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// PostgreSQL for tests: `CONSENTRY_TEST_PG_URL`, default the local `test` database.
pub fn pg_url() -> String {
    std::env::var("CONSENTRY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A name no other test (in this process or another) is using: process id, a counter, the
/// clock's nanoseconds.
pub fn unique_tag() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A scratch directory and a scratch PostgreSQL schema.
pub struct Scratch {
    /// A new, empty directory (SQLite files).
    pub dir: PathBuf,
    /// A directory beside it for key stores (the server refuses keys inside a database's
    /// folder).
    pub keys: PathBuf,
    /// The PostgreSQL schema, created empty.
    pub schema: String,
}

impl Scratch {
    /// Creates both; `what` names them for whoever finds leftovers.
    pub async fn new(what: &str) -> Scratch {
        let tag = unique_tag();
        let dir = std::env::temp_dir().join(format!("consentry-{what}-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let keys = std::env::temp_dir().join(format!("consentry-{what}-{tag}-keys"));
        let schema = format!("consentry_{what}_{tag}");
        let admin = Db::connect(&pg_url())
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} ({e})", pg_url()));
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(admin.pool())
            .await
            .unwrap();
        Scratch { dir, keys, schema }
    }

    /// A key store directory named `name` (created by whoever opens it first).
    pub fn key_dir(&self, name: &str) -> PathBuf {
        self.keys.join(name)
    }

    /// A fresh SQLite database URL in the scratch directory.
    pub fn sqlite_url(&self, name: &str) -> String {
        format!("sqlite://{}", self.dir.join(format!("{name}.db")).display())
    }

    /// The PostgreSQL URL with the scratch schema as its search path.
    pub fn pg_url(&self) -> String {
        let base = pg_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-c%20search_path%3D{}", self.schema)
    }

    /// One URL per backend: SQLite, then PostgreSQL.
    pub fn backends(&self) -> [String; 2] {
        [self.sqlite_url("test"), self.pg_url()]
    }

    /// Drops the schema and removes the directory.
    pub async fn finish(self) {
        if let Ok(admin) = Db::connect(&pg_url()).await {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
                .execute(admin.pool())
                .await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(&self.keys);
    }
}
