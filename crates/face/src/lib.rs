//! Consentry's face engine: YuNet detection → 5-point similarity alignment to 112×112 → SFace
//! embedding → cosine score, plus the enrolment quality gate. InsightFace's SCRFD + w600k_mbf
//! can replace the two networks ([`ModelSet`]), only with an explicit licence acknowledgement.
//!
//! - [`decode`] turns untrusted bytes into an RGB image under size and pixel limits.
//! - [`detect::Detector`] finds faces and landmarks at the image's own size.
//! - [`align`] fits the landmarks to the ArcFace template and warps the crop.
//! - [`embed::Embedder`] turns a crop into a unit-length [`Embedding`].
//! - [`quality`] decides whether a face is good enough to enrol.
//! - [`pad`] tells a live face from a presented one: the passive check on one frame and the
//!   signals (pose, eyes) an active challenge is judged from.
//! - [`FaceEngine`] ties them together; [`eval`] measures accuracy on labelled pairs.
//! - [`runtime`] locates the pinned ONNX Runtime library and models and owns the one ORT
//!   environment of the process. This crate writes no `unsafe` itself; the FFI lives in `ort`.
//!
//! Nothing here stores or logs images or embeddings; callers decide what to keep.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod align;
pub mod challenge;
pub mod decode;
pub mod detect;
pub mod embed;
mod engine;
mod error;
pub mod eval;
pub mod pad;
pub mod quality;
pub mod runtime;

pub use detect::Detection;
pub use embed::Embedding;
pub use engine::{
    EngineConfig, Face, FaceEngine, ModelSet, DEFAULT_THRESHOLD, INSIGHTFACE_THRESHOLD,
    INT8_THRESHOLD,
};
pub use error::FaceError;
pub use quality::{QualityGate, QualityReport};
