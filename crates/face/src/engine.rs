//! [`FaceEngine`]: detector, aligner and recogniser behind one handle.

use std::path::Path;

use image::RgbImage;

use crate::align::{align, AlignedFace};
use crate::decode::{decode_image, read_image, DecodeLimits};
use crate::detect::{Detection, Detector, DetectorConfig};
use crate::embed::{Embedder, Embedding};
use crate::quality::{self, QualityGate, QualityReport};
use crate::runtime::Assets;
use crate::FaceError;

/// The cosine-similarity threshold above which two faces are called the same person.
/// Calibrated on LFW dev folds 1–5 (see docs/accuracy.md for how it was chosen).
pub const DEFAULT_THRESHOLD: f32 = 0.30;

/// How to build a [`FaceEngine`].
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Where the runtime library and models are.
    pub assets: Assets,
    /// ONNX Runtime intra-op threads per session (per request).
    pub threads: usize,
    /// Detector settings.
    pub detector: DetectorConfig,
    /// Flip test-time augmentation for embeddings.
    pub flip: bool,
    /// Limits on decoded images.
    pub limits: DecodeLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            assets: Assets::locate(),
            threads: 1,
            detector: DetectorConfig::default(),
            flip: true,
            limits: DecodeLimits::default(),
        }
    }
}

/// A face found and embedded.
#[derive(Clone, Debug)]
pub struct Face {
    /// Where it is.
    pub detection: Detection,
    /// Its embedding.
    pub embedding: Embedding,
}

/// The face engine. Cheap to share across threads (`&self` everywhere).
#[derive(Debug)]
pub struct FaceEngine {
    detector: Detector,
    embedder: Embedder,
    limits: DecodeLimits,
}

impl FaceEngine {
    /// Loads both models (checking their sha256) and the runtime.
    pub fn load(config: &EngineConfig) -> Result<Self, FaceError> {
        Ok(FaceEngine {
            detector: Detector::load(&config.assets, config.threads, config.detector)?,
            embedder: Embedder::load(&config.assets, config.threads, config.flip)?,
            limits: config.limits,
        })
    }

    /// Whether embeddings use flip test-time augmentation.
    pub fn flip(&self) -> bool {
        self.embedder.flip()
    }

    /// Decodes image bytes with the engine's limits.
    pub fn decode(&self, bytes: &[u8]) -> Result<RgbImage, FaceError> {
        decode_image(bytes, &self.limits)
    }

    /// Reads and decodes an image file with the engine's limits.
    pub fn read(&self, path: &Path) -> Result<RgbImage, FaceError> {
        read_image(path, &self.limits)
    }

    /// All faces, highest score first.
    pub fn detect(&self, img: &RgbImage) -> Result<Vec<Detection>, FaceError> {
        self.detector.detect(img)
    }

    /// Aligns one detection to the 112×112 template.
    pub fn align(&self, img: &RgbImage, det: &Detection) -> Result<AlignedFace, FaceError> {
        align(img, &det.landmarks).ok_or(FaceError::NoFace)
    }

    /// Embeds an aligned crop.
    pub fn embed_aligned(&self, face: &AlignedFace) -> Result<Embedding, FaceError> {
        self.embedder.embed(face)
    }

    /// Detects, picks the largest face and embeds it (verification and comparison).
    pub fn embed_largest(&self, img: &RgbImage) -> Result<Face, FaceError> {
        let dets = self.detect(img)?;
        let idx = quality::largest(&dets).ok_or(FaceError::NoFace)?;
        let detection = dets[idx].clone();
        let embedding = self.embed_aligned(&self.align(img, &detection)?)?;
        Ok(Face {
            detection,
            embedding,
        })
    }

    /// Detects, applies the enrolment quality gate and embeds the one accepted face.
    pub fn enrol(
        &self,
        img: &RgbImage,
        gate: &QualityGate,
    ) -> Result<(Face, QualityReport), FaceError> {
        let dets = self.detect(img)?;
        let (idx, aligned, report) = quality::check(img, &dets, gate, |d| self.align(img, d))?;
        let embedding = self.embed_aligned(&aligned)?;
        Ok((
            Face {
                detection: dets[idx].clone(),
                embedding,
            },
            report,
        ))
    }
}
