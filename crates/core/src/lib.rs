//! Consentry's domain core: every action is one function here, and every write is one database
//! transaction (the audit record will be appended inside the same transaction). Handlers and the
//! CLI only translate to and from these calls.
//!
//! - [`Keyring`]: the root secret (a key file beside the database, never in it) from which each
//!   tenant's key-encryption key, template transform and receipt-signing key are derived.
//! - [`Core`]: bootstrap a tenant, authenticate an API key, create and delete subjects, grant
//!   consent (with a signed [`ConsentReceipt`]), enrol a face, verify 1:1.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod core;
mod error;
mod keyring;
mod receipt;

pub use crate::core::{
    new_id, ConsentView, Core, Credential, Decision, Identification, Principal, Purpose, Role,
    SubjectView,
};
pub use error::CoreError;
pub use keyring::Keyring;
pub use receipt::ConsentReceipt;
