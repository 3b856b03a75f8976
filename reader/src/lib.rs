//! Read a scribe-managed database directly, never through the arbiter.
//!
//! Reader connections can never write: they are opened read-only, with
//! `query_only` as a second belt, `busy_timeout` first, and never touch
//! `journal_mode` or run DDL. WAL lets them read while the arbiter writes
//! at full speed, and read the last committed state while it is down.
//!
//! # Layout
//!
//! - [`reader`]: [`Reader`]: open, query, `current_seq`.
//! - [`values`]: binding wire values to statements and reading rows back,
//!   shared with the arbiter so both sides convert the same way.
//! - [`error`]: this crate's error.

pub mod error;
pub mod reader;
pub mod values;

pub use error::Error;
pub use reader::{Reader, Rows};
