//! Consentry's protected template vault: what makes a stolen database useless.
//!
//! - [`Kek`]: a tenant's key-encryption key of one epoch. It never lives in the database (the
//!   server keeps the epochs in a key store apart from it); it only wraps data keys.
//! - [`DataKey`]: one random key per subject, stored only wrapped ([`WrappedKey`]) by the
//!   tenant's KEK. Deleting the wrapped key destroys every template of that subject in the live
//!   database (crypto-shredding); copies of the database made before keep it until the epoch
//!   it was wrapped under is destroyed (the server's key rotation).
//! - [`TemplateTransform`]: a secret random orthogonal matrix per tenant, derived from a
//!   [`TransformSecret`]. Templates are multiplied by it before sealing, which leaves cosine
//!   scores unchanged within the tenant and makes the same face at two tenants give unrelated
//!   vectors when compared directly. It keeps every similarity, so it is invertible from about
//!   as many known (raw, transformed) pairs as dimensions, and two galleries can be aligned
//!   from known shared members (measured: docs/accuracy.md). A new secret re-keys it.
//! - Sealing: XChaCha20-Poly1305 with a random 192-bit nonce, the associated data binding the
//!   envelope version, tenant, subject and template ids, purpose, model, last use and expiry,
//!   so a ciphertext moved to another record, or a row edited to change how it may be used,
//!   fails to open.
//!
//! Every secret type zeroizes on drop and redacts itself in `Debug`; secret comparisons are
//! constant-time.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod keys;
mod transform;

pub use error::VaultError;
pub use keys::{
    key_from_hex, key_to_hex, random_key, DataKey, Kek, KeyContext, TemplateContext, WrappedKey,
    TEMPLATE_VERSION,
};
pub use transform::{TemplateTransform, TransformSecret};

#[cfg(test)]
mod tests;
