//! The face engine's error type.

use consentry_types::{ErrorCode, HasErrorCode};

/// Everything that can go wrong between image bytes and an embedding.
///
/// Quality failures carry the measured value and the limit so a caller can explain the refusal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FaceError {
    /// The bytes are not an image in any known format.
    #[error("not an image")]
    NotAnImage,
    /// A recognised format that is not JPEG or PNG.
    #[error("unsupported image format {0} (JPEG and PNG are accepted)")]
    UnsupportedFormat(String),
    /// The image data ends early or is corrupt.
    #[error("truncated or corrupt image: {0}")]
    Truncated(String),
    /// The image is larger than the pixel limit (decompression-bomb guard).
    #[error("image is {width}x{height}; the limit is {max_pixels} pixels and {max_side} per side")]
    ImageTooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Pixel limit in force.
        max_pixels: u64,
        /// Side limit in force.
        max_side: u32,
    },
    /// The encoded file is larger than the byte limit.
    #[error("image file is {size} bytes; the limit is {max}")]
    PayloadTooLarge {
        /// Size of the upload.
        size: usize,
        /// Limit in force.
        max: usize,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    FileUnreadable {
        /// The path as given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No face found.
    #[error("no face found")]
    NoFace,
    /// More than one face where one is required.
    #[error("{0} faces found where one is required")]
    MultipleFaces(usize),
    /// Inter-eye distance below the minimum.
    #[error("face too small: {eye_distance:.1} px between the eyes, at least {min:.1} needed")]
    FaceTooSmall {
        /// Measured inter-eye distance in pixels of the original image.
        eye_distance: f32,
        /// Minimum.
        min: f32,
    },
    /// Too blurred.
    #[error("face too blurry: sharpness {sharpness:.1}, at least {min:.1} needed")]
    TooBlurry {
        /// Variance of the Laplacian of the aligned grey crop.
        sharpness: f32,
        /// Minimum.
        min: f32,
    },
    /// Head turned too far.
    #[error("face turned too far: about {yaw_degrees:.0} degrees, at most {max:.0} allowed")]
    FaceTurned {
        /// Estimated yaw in degrees.
        yaw_degrees: f32,
        /// Maximum.
        max: f32,
    },
    /// Detector confidence below the minimum.
    #[error("face detection confidence {score:.2} below {min:.2}")]
    LowConfidence {
        /// Detector score.
        score: f32,
        /// Minimum.
        min: f32,
    },
    /// Landmarks outside the image.
    #[error("face is cut off at the image border")]
    FaceCutOff,
    /// Non-commercial models requested without acknowledging their licence.
    #[error(
        "the InsightFace models are licensed for non-commercial research use only; \
         acknowledge this explicitly to use them"
    )]
    LicenceNotAcknowledged,
    /// Models or runtime missing or wrong.
    #[error("face models unavailable: {0}")]
    ModelUnavailable(String),
    /// Inference failed unexpectedly.
    #[error("inference failed: {0}")]
    Inference(String),
}

impl HasErrorCode for FaceError {
    fn code(&self) -> ErrorCode {
        match self {
            FaceError::NotAnImage => ErrorCode::NotAnImage,
            FaceError::UnsupportedFormat(_) => ErrorCode::UnsupportedFormat,
            FaceError::Truncated(_) => ErrorCode::TruncatedImage,
            FaceError::ImageTooLarge { .. } => ErrorCode::ImageTooLarge,
            FaceError::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            FaceError::FileUnreadable { .. } => ErrorCode::FileUnreadable,
            FaceError::NoFace => ErrorCode::NoFace,
            FaceError::MultipleFaces(_) => ErrorCode::MultipleFaces,
            FaceError::FaceTooSmall { .. } => ErrorCode::FaceTooSmall,
            FaceError::TooBlurry { .. } => ErrorCode::TooBlurry,
            FaceError::FaceTurned { .. } => ErrorCode::FaceTurned,
            FaceError::LowConfidence { .. } => ErrorCode::LowConfidence,
            FaceError::FaceCutOff => ErrorCode::FaceCutOff,
            FaceError::ModelUnavailable(_) => ErrorCode::ModelUnavailable,
            FaceError::LicenceNotAcknowledged => ErrorCode::LicenceNotAcknowledged,
            FaceError::Inference(_) => ErrorCode::Internal,
        }
    }
}

impl From<ort::Error> for FaceError {
    fn from(e: ort::Error) -> Self {
        FaceError::Inference(e.to_string())
    }
}
