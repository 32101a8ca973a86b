//! The SQL. Every statement the core runs is here, one function per statement, and every one
//! that reads or writes a tenant's rows takes the tenant and puts it into its `WHERE` clause, so
//! no action can reach another tenant's rows by passing the wrong id. The only statements
//! without a tenant are the retention sweep and the key rotation (maintenance jobs over every
//! tenant, no read path) and the gallery change feed's sequence number.
//!
//! Functions take a connection (`&mut *tx` inside a transaction, or a pooled connection for a
//! plain read), so an action decides what one transaction holds.

pub(crate) mod abuse;
pub(crate) mod audit;
pub(crate) mod consents;
pub(crate) mod credential_failures;
pub(crate) mod credentials;
pub(crate) mod data_keys;
pub(crate) mod gallery;
pub(crate) mod kek_epochs;
pub(crate) mod keys;
pub(crate) mod links;
pub(crate) mod liveness;
pub(crate) mod modality;
pub(crate) mod passes;
pub(crate) mod subjects;
pub(crate) mod templates;
pub(crate) mod tenants;

/// The connection every store function takes.
pub(crate) type Conn = sqlx::AnyConnection;
