//! Vault errors.

use consentry_types::{ErrorCode, HasErrorCode};

/// What can go wrong opening, unwrapping or transforming.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VaultError {
    /// Authentication failed: wrong key, wrong record, or altered bytes. Deliberately says no
    /// more than that.
    #[error("sealed data does not open with this key and context")]
    Unopenable,
    /// The envelope is shorter than its header or of an unknown version.
    #[error("sealed data is malformed")]
    Malformed,
    /// Encryption failed (it cannot for in-memory buffers with a valid key; reported rather
    /// than leaving an envelope without ciphertext).
    #[error("sealing failed")]
    Seal,
    /// A key given as text is not 64 hex digits.
    #[error("a key must be 64 hexadecimal digits")]
    KeyFormat,
    /// A template's length does not match the transform's dimension.
    #[error("template has {got} dimensions, expected {want}")]
    Dimension {
        /// Given.
        got: usize,
        /// Expected.
        want: usize,
    },
}

impl HasErrorCode for VaultError {
    fn code(&self) -> ErrorCode {
        match self {
            VaultError::KeyFormat => ErrorCode::KeyUnavailable,
            VaultError::Unopenable
            | VaultError::Malformed
            | VaultError::Seal
            | VaultError::Dimension { .. } => ErrorCode::Internal,
        }
    }
}
