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

/// The speaker engine with the shipped model (each call loads one: `Core::set_voice` takes it).
pub fn voice_engine() -> consentry_voice::VoiceEngine {
    consentry_voice::VoiceEngine::load(&consentry_face::runtime::Assets::locate(), 1)
        .unwrap_or_else(|e| panic!("{e}: run python3 setup/fetch.py"))
}

/// A committed recording's bytes (tests/fixtures/voice: LibriSpeech, CC BY 4.0; 1688-… are
/// one speaker, 2033-… another).
pub fn voice_clip(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/voice")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A 16 kHz mono 16-bit PCM WAV of `samples` (full scale ±1.0), written by hand so the tests
/// need no audio crate of their own.
pub fn wav_16k(samples: &[f32]) -> Vec<u8> {
    let data = u32::try_from(2 * samples.len()).expect("a test recording under 4 GiB");
    let mut w = Vec::with_capacity(44 + data as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes()); // format chunk size
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&16_000u32.to_le_bytes()); // rate
    w.extend_from_slice(&32_000u32.to_le_bytes()); // bytes per second
    w.extend_from_slice(&2u16.to_le_bytes()); // bytes per frame
    w.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        w.extend_from_slice(&((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes());
    }
    w
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

fn jpeg(img: &image::RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
        .encode_image(img)
        .unwrap();
    out
}

/// Ten frames at 10 fps (`(t_ms, JPEG)`) of the sample photo `name`; with `blink`, the eyes are
/// painted shut in frames 4 and 5. The project may ship no video of a live person: this is
/// how the tests make a burst that passes a blink challenge (painted eyes fool the eye model,
/// which is why the passive and same-face checks exist).
pub fn blink_burst(name: &str, blink: bool) -> Vec<(u32, Vec<u8>)> {
    let e = engine();
    let open = e.decode(&photo(name)).unwrap();
    let det = e.detect(&open).unwrap().into_iter().next().unwrap();
    let d = (det.landmarks[1][0] - det.landmarks[0][0]).abs();
    let mut shut = open.clone();
    for [x, y] in [det.landmarks[0], det.landmarks[1]] {
        let colour = *open.get_pixel(x as u32, (y - 0.22 * d) as u32);
        let (rx, ry) = (0.30 * d, 0.16 * d);
        for py in (y - ry) as u32..=(y + ry) as u32 {
            for px in (x - rx) as u32..=(x + rx) as u32 {
                let (u, v) = ((px as f32 - x) / rx, (py as f32 - y) / ry);
                if u * u + v * v <= 1.0 {
                    shut.put_pixel(px, py, colour);
                }
            }
        }
        // The lashes of the shut lid: a dark curve along the lower half.
        let (cy, a, b) = (y - 0.15 * ry, 0.95 * rx, 1.05 * ry);
        for py in cy as u32..=(cy + b + 3.0) as u32 {
            for px in (x - a - 3.0) as u32..=(x + a + 3.0) as u32 {
                let (u, v) = ((px as f32 - x) / a, (py as f32 - cy) / b);
                if ((u * u + v * v).sqrt() - 1.0).abs() * b <= 2.0 {
                    shut.put_pixel(px, py, image::Rgb([40, 25, 20]));
                }
            }
        }
    }
    let (open, shut) = (jpeg(&open), jpeg(&shut));
    (0..10)
        .map(|i| {
            (
                i * 100,
                if blink && (i == 4 || i == 5) {
                    shut.clone()
                } else {
                    open.clone()
                },
            )
        })
        .collect()
}
