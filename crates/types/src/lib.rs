//! Consentry's shared wire types.
//!
//! The main item is [`ErrorCode`]: the single catalogue of stable, snake_case error codes that
//! every crate maps its errors to. The HTTP server picks a response status from
//! [`ErrorCode::http_status`], the CLI an exit status from [`ErrorCode::exit_code`], and both put
//! [`ErrorCode::as_str`] in their JSON output, so a client can match on the code and never on
//! the message. Codes never change meaning and are never reused.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;

pub use error::{Category, ErrorBody, ErrorCode, HasErrorCode};
