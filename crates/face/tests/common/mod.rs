//! Shared helpers: one engine per test binary, paths to the photos.

use std::path::PathBuf;
use std::sync::OnceLock;

use consentry_face::{EngineConfig, FaceEngine, ModelSet};
use image::RgbImage;

pub fn engine() -> &'static FaceEngine {
    static ENGINE: OnceLock<FaceEngine> = OnceLock::new();
    ENGINE.get_or_init(|| match FaceEngine::load(&EngineConfig::default()) {
        Ok(e) => e,
        Err(e) => panic!("face engine unavailable ({e}); run `python3 setup/fetch.py` first"),
    })
}

/// The server's default models (int8 SFace), one engine per test binary too.
pub fn int8_engine() -> &'static FaceEngine {
    static ENGINE: OnceLock<FaceEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        FaceEngine::load(&EngineConfig {
            models: ModelSet::StandardInt8,
            ..EngineConfig::default()
        })
        .unwrap_or_else(|e| {
            panic!("int8 face engine unavailable ({e}); run `python3 setup/fetch.py` first")
        })
    })
}

/// A photo fetched by setup (assets/photos) or committed (tests/fixtures).
pub fn photo(name: &str) -> PathBuf {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    if fixture.exists() {
        return fixture;
    }
    EngineConfig::default()
        .assets
        .path(&format!("photos/{name}"))
}

pub fn load(name: &str) -> RgbImage {
    engine()
        .read(&photo(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn score(a: &RgbImage, b: &RgbImage) -> f32 {
    let e = engine();
    let ea = e.embed_primary(a).expect("face in a").embedding;
    let eb = e.embed_primary(b).expect("face in b").embedding;
    ea.cosine(&eb)
}

/// Rotates about the centre by `degrees` (bilinear, black outside), keeping the size.
pub fn rotate(img: &RgbImage, degrees: f32) -> RgbImage {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let (s, c) = degrees.to_radians().sin_cos();
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let (dx, dy) = (x as f32 - w / 2.0, y as f32 - h / 2.0);
        let (sx, sy) = (c * dx + s * dy + w / 2.0, -s * dx + c * dy + h / 2.0);
        if sx < 0.0 || sy < 0.0 || sx >= w - 1.0 || sy >= h - 1.0 {
            return image::Rgb([0, 0, 0]);
        }
        let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        let p = |xx, yy, ch| f32::from(img.get_pixel(xx, yy)[ch]);
        let mut out = [0u8; 3];
        for (ch, o) in out.iter_mut().enumerate() {
            let top = p(x0, y0, ch) * (1.0 - fx) + p(x0 + 1, y0, ch) * fx;
            let bot = p(x0, y0 + 1, ch) * (1.0 - fx) + p(x0 + 1, y0 + 1, ch) * fx;
            *o = (top * (1.0 - fy) + bot * fy).round() as u8;
        }
        image::Rgb(out)
    })
}
