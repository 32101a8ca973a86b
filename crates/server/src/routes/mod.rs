//! One module per resource; each handler authenticates, translates the request into one
//! `consentry-core` call and the result back.

pub(crate) mod audit;
pub(crate) mod consents;
pub(crate) mod credentials;
pub(crate) mod decisions;
pub(crate) mod faces;
pub(crate) mod keys;
pub(crate) mod links;
pub(crate) mod liveness;
pub(crate) mod passes;
pub(crate) mod subjects;
pub(crate) mod voices;
