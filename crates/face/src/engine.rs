//! [`FaceEngine`]: detector, aligner and recogniser behind one handle.

use std::path::Path;

use image::RgbImage;

use crate::align::{align, AlignedFace};
use crate::decode::{decode_image, read_image, DecodeLimits};
use crate::detect::{Detection, Detector, DetectorConfig, DetectorModel};
use crate::embed::{Embedder, Embedding, RecogniserModel};
use crate::quality::{self, QualityGate, QualityReport};
use crate::runtime::Assets;
use crate::FaceError;

/// The cosine-similarity threshold above which two faces are called the same person.
/// Calibrated on LFW dev folds 1–5: the middle of the plateau of thresholds that maximise
/// accuracy over all 3,000 dev pairs (0.31–0.35), where FAR on the dev impostors is 0.13%.
/// See docs/accuracy.md.
pub const DEFAULT_THRESHOLD: f32 = 0.33;

/// Threshold for the int8 SFace ([`ModelSet::StandardInt8`]), chosen by the same rule on the
/// same pairs (99.27–99.37% from 0.30 to 0.32; at 0.32 the dev FAR is 0.13%, as fp32's at 0.33).
pub const INT8_THRESHOLD: f32 = 0.32;

/// Threshold for the opt-in InsightFace models (SCRFD + w600k_mbf), chosen the same way on the
/// same LFW dev pairs (docs/accuracy.md).
pub const INSIGHTFACE_THRESHOLD: f32 = 0.22;

/// The pair of networks the engine runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ModelSet {
    /// YuNet + SFace: permissive licences (MIT, Apache-2.0). The default.
    #[default]
    Standard,
    /// YuNet + SFace quantised to int8 with 7-bit weights: the same accuracy on LFW on every
    /// x86-64 CPU, faster embeddings and half the memory, for servers. Its templates are its own (see
    /// [`ModelSet::template_model`]).
    StandardInt8,
    /// InsightFace SCRFD-500M + w600k_mbf: more accurate, but upstream allows non-commercial
    /// research use only. Loads only with [`EngineConfig::accept_noncommercial_licence`].
    InsightFace,
}

impl ModelSet {
    /// The networks of this set.
    pub fn models(self) -> (DetectorModel, RecogniserModel) {
        match self {
            ModelSet::Standard => (DetectorModel::YuNet, RecogniserModel::SFace),
            ModelSet::StandardInt8 => (DetectorModel::YuNet, RecogniserModel::SFaceInt8),
            ModelSet::InsightFace => (DetectorModel::Scrfd, RecogniserModel::Mbf),
        }
    }

    /// The name stored with every template this set makes. Templates are compared only with
    /// probes from the same network: a template from another model (or another quantisation of
    /// the same one) never matches, and shows as needing re-enrolment.
    pub fn template_model(self) -> &'static str {
        match self.models().1 {
            RecogniserModel::SFace => "sface-2021dec-fp32",
            RecogniserModel::SFaceInt8 => "sface-2021dec-int8w7",
            RecogniserModel::Mbf => "w600k-mbf",
        }
    }

    /// The calibrated match threshold of this set.
    pub fn default_threshold(self) -> f32 {
        match self {
            ModelSet::Standard => DEFAULT_THRESHOLD,
            ModelSet::StandardInt8 => INT8_THRESHOLD,
            ModelSet::InsightFace => INSIGHTFACE_THRESHOLD,
        }
    }
}

/// How to build a [`FaceEngine`].
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Where the runtime library and models are.
    pub assets: Assets,
    /// ONNX Runtime intra-op threads per session (per request).
    pub threads: usize,
    /// Detector settings.
    pub detector: DetectorConfig,
    /// Flip test-time augmentation for embeddings (off by default: on LFW dev it changed k-fold
    /// accuracy by less than the fold spread, at twice the embedding cost; see docs/accuracy.md).
    pub flip: bool,
    /// Limits on decoded images.
    pub limits: DecodeLimits,
    /// Which networks.
    pub models: ModelSet,
    /// The operator has acknowledged that [`ModelSet::InsightFace`]'s weights are licensed for
    /// non-commercial research use only.
    pub accept_noncommercial_licence: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            assets: Assets::locate(),
            threads: 1,
            detector: DetectorConfig::default(),
            flip: false,
            limits: DecodeLimits::default(),
            models: ModelSet::Standard,
            accept_noncommercial_licence: false,
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
    models: ModelSet,
}

impl FaceEngine {
    /// Loads both models (checking their sha256) and the runtime.
    pub fn load(config: &EngineConfig) -> Result<Self, FaceError> {
        if config.models == ModelSet::InsightFace && !config.accept_noncommercial_licence {
            return Err(FaceError::LicenceNotAcknowledged);
        }
        let (det, rec) = config.models.models();
        Ok(FaceEngine {
            detector: Detector::load(&config.assets, det, config.threads, config.detector)?,
            embedder: Embedder::load(&config.assets, rec, config.threads, config.flip)?,
            limits: config.limits,
            models: config.models,
        })
    }

    /// The networks in use.
    pub fn models(&self) -> ModelSet {
        self.models
    }

    /// The calibrated match threshold for the networks in use.
    pub fn default_threshold(&self) -> f32 {
        self.models.default_threshold()
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

    /// Faces found by the quick pass used for the primary face (see [`Detector::detect_quick`]).
    pub fn detect_quick(&self, img: &RgbImage) -> Result<Vec<Detection>, FaceError> {
        self.detector.detect_quick(img)
    }

    /// Aligns one detection to the 112×112 template.
    pub fn align(&self, img: &RgbImage, det: &Detection) -> Result<AlignedFace, FaceError> {
        align(img, &det.landmarks).ok_or(FaceError::NoFace)
    }

    /// Embeds an aligned crop.
    pub fn embed_aligned(&self, face: &AlignedFace) -> Result<Embedding, FaceError> {
        self.embedder.embed(face)
    }

    /// Detects, picks the primary face ([`quality::primary`]) and embeds it (verification and
    /// comparison).
    /// Detection runs in the quick mode ([`Detector::detect_quick`]): enrolment, which must
    /// also see rival faces, uses the full pass.
    pub fn embed_primary(&self, img: &RgbImage) -> Result<Face, FaceError> {
        let (detection, aligned) = self.align_primary(img)?;
        let embedding = self.embed_aligned(&aligned)?;
        Ok(Face {
            detection,
            embedding,
        })
    }

    /// Detects (quick mode), picks the primary face and aligns it: the first half of
    /// [`FaceEngine::embed_primary`].
    pub fn align_primary(&self, img: &RgbImage) -> Result<(Detection, AlignedFace), FaceError> {
        let dets = self.detect_quick(img)?;
        let idx = quality::primary(&dets, img.width(), img.height()).ok_or(FaceError::NoFace)?;
        let aligned = self.align(img, &dets[idx])?;
        Ok((dets[idx].clone(), aligned))
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
