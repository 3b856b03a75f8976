//! The one contract between scribe's processes.
//!
//! Every type that crosses the socket, the service trait, the protocol
//! version, the limits and the path resolver live here and nowhere else, so
//! the arbiter, the client and the reader cannot drift apart.
//!
//! # Layout
//!
//! - [`value`]: SQLite values and parameters as they travel on the wire.
//! - [`batch`]: a write request: statements applied all or nothing.
//! - [`receipt`]: what a committed write returns.
//! - [`fingerprint`]: what tells a keyed write's retry from another batch.
//! - [`session`]: write sessions (interactive transactions): lease, info.
//! - [`status`]: the arbiter's self-report for `scribe status`.
//! - [`wire_error`]: the categorized error a write can end in.
//! - [`category`]: the error categories, their retry rule and CLI exit codes.
//! - [`frame`]: the socket protocol: preamble, frames, requests, answers,
//!   bounded decoding; [`framebuf`] splits read bytes into frames; [`io`]
//!   reads and writes them on a tokio socket.
//! - [`json`]: the JSON form of these types (CLI `--json`, HTTP API).
//! - [`json_frame`]: the JSON codec of the socket protocol.
//! - [`json_answer`]: receipts and statement results written straight to
//!   JSON bytes (the hot answers of that codec).
//! - [`json_body`]: a JSON write request decoded into a batch, limits
//!   checked while reading; `json_params` its parameters, value by value.
//! - [`limits`]: documented maximums (frame size, batch size…).
//! - [`lockfile`]: the single-instance `flock` and what the file records.
//! - [`names`]: a file with several names (hard links) is served and read by one only.
//! - [`procstate`]: whether a process runs (a zombie has exited), or is stopped.
//! - [`paths`]: THE resolver from a database path to its lock, socket and log.
//! - [`reach`]: which socket reaches the arbiter, and who may answer there.
//! - [`starting`]: an arbiter that holds the lock but serves nobody yet.
//! - [`failed_start`]: an arbiter whose start failed holds auto-start back.
//! - [`stopmarker`]: the marker that keeps auto-start off after a stop.
//! - [`sidefile`]: the files beside the database take its mode and owner.
//! - [`spin`]: when a side polls for the next frame instead of sleeping.
//! - [`directive`]: a migration's `-- scribe: foreign_keys=off`, read as meant.
//! - [`error`]: this crate's own error (path resolution).

pub mod batch;
pub mod category;
pub mod directive;
pub mod error;
pub mod failed_start;
pub mod fingerprint;
pub mod frame;
pub mod framebuf;
pub mod io;
pub mod json;
pub mod json_answer;

pub mod json_body;
pub mod json_frame;
mod json_params;
pub mod limits;
pub mod lockfile;
pub mod migration;
pub mod names;
pub mod paths;
pub mod procstate;
pub mod reach;
pub mod receipt;
pub mod session;
pub mod sidefile;
pub mod spin;
pub mod starting;
pub mod status;
pub mod stopmarker;
pub mod value;
pub mod wire_error;

pub use batch::{Batch, Params, Statement};
pub use category::Category;
pub use error::Error;
pub use frame::{Answer, Reply, Request};
pub use migration::{MigrateReport, Migration, MigrationRecord};
pub use paths::Paths;
pub use receipt::{Hello, Receipt, Served, StatementResult, StopReport, StopRequest};
pub use session::{Began, BeginRequest, Lease, SessionInfo};

/// The protocol version. Bump on any change to the types of this crate;
/// the handshake refuses a mismatch, naming both versions.
pub const PROTOCOL_VERSION: u32 = 11;

/// The session id that, in an `Exec`, `Commit` or `Rollback`, names the
/// session most recently begun on this connection: a caller sends a
/// `Begin` and its first call in one write, without waiting a round trip
/// for the id (real ids count up from 1). When that begin failed, the call
/// fails too, and the begin's answer says why. The two must leave
/// together: another `Begin` between them on the connection would take
/// the name.
pub const LATEST_SESSION: u64 = u64::MAX;
pub use status::Status;
pub use value::Value;
pub use wire_error::{Undone, WriteError};
