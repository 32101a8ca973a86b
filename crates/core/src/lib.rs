//! Consentry's domain core: every action is one function here, and every write is one database
//! transaction (the audit record will be appended inside the same transaction). Handlers and the
//! CLI only translate to and from these calls.
//!
//! - [`Keyring`]: the root secret (a key file beside the database, never in it) from which each
//!   tenant's key-encryption key, template transform and receipt-signing key are derived.
//! - [`Core`]: what the actions share. The actions are in `actions/`, one file per resource
//!   (tenants, keys, subjects, consents, enrolment, verification, identification, access,
//!   retention); all of their SQL is in `store/`, which puts the tenant into every query.
//! - `gallery`: each tenant's in-memory 1:N index, kept in step with every node.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod actions;
mod core;
mod error;
mod gallery;
mod keyring;
mod model;
mod receipt;
mod store;

pub use crate::actions::access::{
    FAILURE_WINDOW_SECS, MAX_FAILURES_PER_KEY, MAX_FAILURES_PER_TENANT,
};
pub use crate::core::{new_id, Core};
pub use error::CoreError;
pub use keyring::Keyring;
pub use model::{
    ConsentView, Credential, Decision, Identification, Principal, Purpose, Role, SubjectView,
};
pub use receipt::ConsentReceipt;
