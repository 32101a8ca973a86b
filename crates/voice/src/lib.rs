//! Consentry's voice engine: speaker verification as a second modality next to the face.
//!
//! Audio in (WAV PCM 8/16/24/32-bit or float, FLAC; mono or stereo, mixed down; any common
//! rate, resampled to 16 kHz) → Kaldi-compatible 80-bin log-mel filterbank, mean-normalised over
//! time → CAM++ (3D-Speaker, Apache-2.0; prepared from its PyTorch state dict by
//! `setup/campplus.py`) → a 192-dimensional embedding, compared by cosine.
#![forbid(unsafe_code)]

pub mod audio;
pub mod engine;
pub mod error;
pub mod fbank;

pub use audio::{Audio, AudioLimits};
pub use engine::{VoiceEmbedding, VoiceEngine, DEFAULT_THRESHOLD, DIM, MODEL_NAME};
pub use error::VoiceError;
