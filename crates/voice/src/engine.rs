//! The voice engine: audio → features → CAM++ embedding, and their comparison.

use consentry_face::runtime::{Assets, SessionPool};
use ort::value::TensorRef;

use crate::audio::{Audio, AudioLimits};
use crate::{fbank, VoiceError};

/// The prepared model under the assets directory (setup/manifest.tsv).
pub const MODEL: &str = "models/campplus_cn_en_common.onnx";
/// The template model name recorded with voice templates.
pub const MODEL_NAME: &str = "campplus_cn_en_common";
/// Seconds of sound (above -50 dBFS) a recording must hold besides its length: a recording of
/// silence is refused as too short rather than enrolled.
pub const MIN_SOUND_SECONDS: f32 = 1.0;
/// The embedding's length.
pub const DIM: usize = 192;

/// The cosine at or above which two recordings are taken for the same speaker: calibrated on
/// the development recordings (docs/accuracy.md, "Voice"). CAM++ ends in a ReLU, so its
/// embeddings are non-negative and unrelated voices still score about 0.4 to 0.6.
pub const DEFAULT_THRESHOLD: f32 = 0.66;

/// A speaker embedding, L2-normalised.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VoiceEmbedding(pub Vec<f32>);

impl VoiceEmbedding {
    /// Cosine similarity (both are unit length).
    pub fn cosine(&self, other: &VoiceEmbedding) -> f32 {
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }
}

/// CAM++ through ONNX Runtime, with the audio limits and the minimum speech length.
#[derive(Debug)]
pub struct VoiceEngine {
    pool: SessionPool,
    /// Limits on decoded audio.
    pub limits: AudioLimits,
    /// Seconds of audio below which a recording is refused (`audio_too_short`).
    pub min_seconds: f32,
}

impl VoiceEngine {
    /// Loads the pinned model (sha256-checked) with `threads` intra-op threads.
    pub fn load(assets: &Assets, threads: usize) -> Result<VoiceEngine, VoiceError> {
        Ok(VoiceEngine {
            pool: SessionPool::new(assets, MODEL, threads)?,
            limits: AudioLimits::default(),
            min_seconds: 3.0,
        })
    }

    /// Decodes a recording within the limits and refuses one that is too short, or that holds
    /// less than [`MIN_SOUND_SECONDS`] of sound (silence, a muted microphone).
    pub fn decode(&self, bytes: &[u8]) -> Result<Audio, VoiceError> {
        let audio = Audio::decode(bytes, &self.limits)?;
        let sound = audio.sound_seconds();
        if audio.seconds() < self.min_seconds || sound < MIN_SOUND_SECONDS.min(self.min_seconds) {
            return Err(VoiceError::TooShort {
                seconds: audio.seconds().min(sound),
                min: self.min_seconds,
            });
        }
        Ok(audio)
    }

    /// The embedding of 16 kHz audio.
    pub fn embed_audio(&self, audio: &Audio) -> Result<VoiceEmbedding, VoiceError> {
        let feats = fbank::features(&audio.samples);
        let frames = feats.len() / fbank::BINS;
        if frames < 2 {
            return Err(VoiceError::TooShort {
                seconds: audio.seconds(),
                min: self.min_seconds,
            });
        }
        let raw = self.pool.with(|session| {
            let tensor = TensorRef::from_array_view(([1, frames, fbank::BINS], &feats[..]))?;
            let outputs = session.run(ort::inputs!["feats" => tensor])?;
            let out = outputs.get("embs").ok_or_else(|| {
                consentry_face::FaceError::Inference("speaker model output embs missing".into())
            })?;
            Ok(out.try_extract_tensor::<f32>()?.1.to_vec())
        })?;
        let norm = raw.iter().map(|v| v * v).sum::<f32>().sqrt();
        if !(norm.is_finite() && norm > 0.0) {
            return Err(VoiceError::Inference(
                "the speaker embedding is zero".into(),
            ));
        }
        Ok(VoiceEmbedding(raw.iter().map(|v| v / norm).collect()))
    }

    /// Decode, check and embed a recording.
    pub fn embed(&self, bytes: &[u8]) -> Result<VoiceEmbedding, VoiceError> {
        self.embed_audio(&self.decode(bytes)?)
    }
}
