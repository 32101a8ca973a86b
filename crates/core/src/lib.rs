//! Consentry's domain core: every action is one function here, and every write is one database
//! transaction, and the audit record of an action is appended inside that transaction. Handlers and the
//! CLI only translate to and from these calls.
//!
//! - [`Keyring`]: the key store, apart from the database: the root secret, from which each
//!   tenant's template transform and signing keys are derived, and the key-encryption keys in
//!   epochs, which wrap the subjects' data keys and rotate (`actions/rotation.rs`).
//! - [`Core`]: what the actions share. The actions are in `actions/`, one file per resource
//!   (tenants, keys, subjects, consents, enrolment, verification, identification, access,
//!   retention); all of their SQL is in `store/`, which puts the tenant into every query.
//! - `gallery`: each tenant's in-memory 1:N index, kept in step with every node.
//! - `audit`: the record each action appends in its own transaction (one Merkle log per
//!   tenant, `consentry-audit`), checkpoints, proofs and the person's view of their accesses.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod abuse;
mod actions;
mod audit;
mod core;
mod engine_pool;
mod error;
mod fusion;
mod gallery;
mod keys;
mod model;
mod receipt;
mod store;

pub use crate::abuse::{network_of, AbuseRules, Alert};
pub use crate::actions::access::{
    FAILURE_WINDOW_SECS, MAX_FAILURES_PER_KEY, MAX_FAILURES_PER_TENANT,
};
pub use crate::actions::enrolment::FrameCheck;
pub use crate::actions::keys::{KeyRequest, KeyView, MAX_KEY_DAYS};
pub use crate::actions::links::{LinkResult, MintedLink, MAX_LINK_MINUTES};
pub use crate::actions::liveness::{
    LivenessChallenge, LivenessFrame, LivenessModels, LivenessResult, CHALLENGE_SECONDS,
    DEADLINE_SECONDS, MAX_FRAMES, TOKEN_SECONDS,
};
pub use crate::actions::passes::{
    CheckIn, IssuedPass, CHECKIN_RETENTION_DAYS, DEFAULT_PASS_DAYS, MAX_CHECKIN_RETENTION_DAYS,
    MAX_PASS_DAYS,
};
pub use crate::actions::rotation::Rotation;
pub use crate::actions::self_service::{
    CredentialInfo, PassInfo, SelfExport, SelfPrincipal, SelfView, TemplateInfo,
};
pub use crate::actions::verification::Probes;
pub use crate::audit::{origin as audit_origin, Access, MAX_ENTRIES_PER_READ};
pub use crate::core::{new_id, Core, EngineQueue};
pub use error::CoreError;
pub use fusion::Fusion;
pub use keys::Keyring;
#[cfg(feature = "pkcs11")]
pub use keys::TokenConfig;
pub use model::{
    ConsentView, Credential, Decision, Identification, Modality, Principal, Purpose, Role,
    SubjectView, MAX_PURPOSE_CHARS,
};
pub use receipt::ConsentReceipt;
