//! Consentry's tamper-evident audit log, the parts that need no database: so the server and
//! the offline verifier (`consentry audit verify`) share one implementation.
//!
//! - [`merkle`]: RFC 9162 (Certificate Transparency v2) hashing, leaf `H(0x00‖entry)` and node
//!   `H(0x01‖left‖right)` with SHA-256; which stored subtrees a root, an inclusion proof or a
//!   consistency proof is made of; and the RFC's verification algorithms.
//! - [`note`]: checkpoints in the C2SP `tlog-checkpoint` text format, signed as a C2SP signed
//!   note with Ed25519.
//! - [`entry`]: what one audit record says, and its exact bytes.
//! - [`verify`]: the offline verifier, over a server or an export file.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod entry;
pub mod merkle;
pub mod note;
pub mod verify;

pub use entry::{Actor, Entry};
pub use merkle::{Hash, MemoryTree};
pub use note::{Checkpoint, NoteError, VerifierKey};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// A hash as the API and checkpoints write it: standard base64 with padding.
pub fn hash_to_base64(h: &Hash) -> String {
    B64.encode(h)
}

/// Reads a base64 hash; `None` unless it is exactly 32 bytes.
pub fn hash_from_base64(text: &str) -> Option<Hash> {
    B64.decode(text).ok().and_then(|v| <Hash>::try_from(v).ok())
}
