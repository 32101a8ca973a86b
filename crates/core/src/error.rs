//! Core errors: each maps to one stable code.

use consentry_face::FaceError;
use consentry_types::{ErrorCode, HasErrorCode};
use consentry_vault::VaultError;

/// Why an action was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// Unknown, expired or revoked API key.
    #[error("unknown or invalid API key")]
    Unauthorized,
    /// The key is past its expiry.
    #[error("this API key has expired")]
    KeyExpired,
    /// The key was revoked.
    #[error("this API key was revoked")]
    KeyRevoked,
    /// The key was suspended for unusual use.
    #[error("this API key is suspended; an admin can reinstate it")]
    KeySuspended,
    /// A pass was refused.
    #[error(transparent)]
    Pass(consentry_pass::PassError),
    /// A scoped link past its expiry.
    #[error("this link has expired")]
    LinkExpired,
    /// A liveness challenge answered already or past its deadline.
    #[error("this liveness challenge was answered already or has expired; ask for another")]
    ChallengeExpired,
    /// The purpose needs a fresh liveness result, and the request has no valid one.
    #[error("this needs a fresh liveness result for this subject")]
    LivenessRequired,
    /// The key's role may not do this.
    #[error("this key's role may not do that")]
    Forbidden,
    /// No such record in the caller's tenant.
    #[error("not found")]
    NotFound,
    /// A unique name is taken.
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// No active consent for the purpose.
    #[error("no active consent for this purpose")]
    ConsentRequired,
    /// Too many failed card/PIN attempts by this key (or this tenant) in the current window.
    #[error("too many failed attempts; try again later")]
    TooManyAttempts,
    /// Reading a record needs a stated purpose.
    #[error("state the purpose of this read in X-Consentry-Purpose")]
    PurposeRequired,
    /// Bad arguments.
    #[error("{0}")]
    Invalid(String),
    /// The request's biometrics do not fit the purpose's modality policy.
    #[error("{0}")]
    ModalityPolicy(String),
    /// The voice engine refused the recording.
    #[error(transparent)]
    Voice(#[from] consentry_voice::VoiceError),
    /// The face engine refused the image.
    #[error(transparent)]
    Face(#[from] FaceError),
    /// A sealed record failed to open (corruption or a wrong key).
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The gallery index refused a template (a bug or corrupt data; never skipped silently).
    #[error("gallery index: {0}")]
    Index(#[from] consentry_index::IndexError),
    /// The face and voice engines have more work waiting than the queue allows; nothing was
    /// done.
    #[error("the server is busy; try again shortly")]
    Overloaded,
    /// Something inside the server failed (a worker task died); the detail is logged, never
    /// sent.
    #[error("internal: {0}")]
    Internal(String),
    /// Storage failed.
    #[error("storage: {0}")]
    Db(#[from] sqlx::Error),
    /// The key file could not be read or written.
    #[error("key file: {0}")]
    KeyFile(String),
}

impl HasErrorCode for CoreError {
    fn code(&self) -> ErrorCode {
        match self {
            CoreError::Unauthorized => ErrorCode::Unauthorized,
            CoreError::Forbidden => ErrorCode::Forbidden,
            CoreError::KeyExpired => ErrorCode::KeyExpired,
            CoreError::LinkExpired => ErrorCode::LinkExpired,
            CoreError::ChallengeExpired => ErrorCode::ChallengeExpired,
            CoreError::LivenessRequired => ErrorCode::LivenessRequired,
            CoreError::Pass(e) => e.code(),
            CoreError::KeyRevoked => ErrorCode::KeyRevoked,
            CoreError::KeySuspended => ErrorCode::KeySuspended,
            CoreError::NotFound => ErrorCode::NotFound,
            CoreError::ConsentRequired => ErrorCode::ConsentRequired,
            CoreError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            CoreError::Invalid(_) => ErrorCode::InvalidRequest,
            CoreError::PurposeRequired => ErrorCode::PurposeRequired,
            CoreError::TooManyAttempts => ErrorCode::TooManyAttempts,
            CoreError::Overloaded => ErrorCode::Overloaded,
            CoreError::Face(e) => e.code(),
            CoreError::Voice(e) => e.code(),
            CoreError::ModalityPolicy(_) => ErrorCode::ModalityPolicy,
            CoreError::Vault(e) => e.code(),
            CoreError::Index(_) | CoreError::Internal(_) => ErrorCode::Internal,
            CoreError::Db(_) => ErrorCode::StorageUnavailable,
            CoreError::KeyFile(_) => ErrorCode::KeyUnavailable,
        }
    }
}
