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
//! - [`classify`]: [`Kind`]: what a statement does, as SQLite sees it
//!   (read, write, or transaction control), for callers that route.
//! - [`copy`]: `VACUUM INTO`, a backup made by reading.
//! - [`error`]: this crate's error.
//!
//! Values are bound and read back by `scribe-values`, the same code the
//! arbiter uses, so a value means the same on either path.

pub mod classify;
pub mod copy;
pub mod error;
pub mod reader;

pub use classify::{Changes, Kind, SavepointOp};
pub use error::Error;
pub use reader::{Reader, Rows};
