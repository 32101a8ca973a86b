//! One file per resource; each public action is one `impl Core` method and each write is one
//! transaction, so a record that must be written with an action (the audit log's) is one call
//! inside it.

pub(crate) mod access;
mod consents;
pub(crate) mod enrolment;
mod identification;
pub(crate) mod keys;
pub(crate) mod links;
pub(crate) mod liveness;
mod modality;
pub(crate) mod passes;
mod retention;
pub(crate) mod rotation;
pub(crate) mod self_service;
mod subjects;
mod tenants;
pub(crate) mod verification;
