//! The voice engine's errors, each with its stable code from the catalogue.

use consentry_types::{ErrorCode, HasErrorCode};

/// What went wrong with a recording or the engine.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// Not WAV or FLAC, or a damaged file.
    #[error("not audio: {0}")]
    NotAudio(String),
    /// WAV or FLAC with an encoding this engine does not read.
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    /// Less speech than the minimum.
    #[error("{seconds:.1} s of speech; at least {min:.1} s is needed")]
    TooShort {
        /// Seconds of speech found.
        seconds: f32,
        /// The minimum.
        min: f32,
    },
    /// Longer than the limit.
    #[error("the recording is longer than {max:.0} s")]
    TooLong {
        /// The limit in seconds.
        max: f32,
    },
    /// The model or runtime could not be loaded.
    #[error("{0}")]
    Model(#[from] consentry_face::FaceError),
    /// ONNX Runtime failed while running.
    #[error("inference failed: {0}")]
    Inference(String),
}

impl From<ort::Error> for VoiceError {
    fn from(e: ort::Error) -> Self {
        VoiceError::Inference(e.to_string())
    }
}

impl HasErrorCode for VoiceError {
    fn code(&self) -> ErrorCode {
        match self {
            VoiceError::NotAudio(_) => ErrorCode::NotAudio,
            VoiceError::Unsupported(_) => ErrorCode::UnsupportedAudio,
            VoiceError::TooShort { .. } => ErrorCode::AudioTooShort,
            VoiceError::TooLong { .. } => ErrorCode::AudioTooLong,
            VoiceError::Model(e) => e.code(),
            VoiceError::Inference(_) => ErrorCode::Internal,
        }
    }
}
