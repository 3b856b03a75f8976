//! Write to a scribe-managed database from any process. This is the
//! library a writing program links: it depends on the protocol and the
//! reader, never on the arbiter (the `scribe` CLI and the bench are
//! packages of their own).
//!
//! A [`Client`] connects to the arbiter's socket (starting the arbiter
//! when none answers), says hello, and sends batches; every error is one
//! of the categories of [`Error`], each with its own CLI exit code.
//!
//! # Layout
//!
//! - [`client`]: [`Client`]: writes that reconnect and retry safely.
//! - [`connection`]: [`Connection`]: one connection: hello, write, status,
//!   stop.
//! - [`retry`]: which errors are retried, backoff, idempotency keys.
//! - [`options`]: deadlines and auto-start settings, in one struct.
//! - [`autostart`]: find `scribed`, start it detached, wait until ready.
//! - [`script`]: split an SQL script into statements (for `exec --file`).
//! - [`transaction`]: write sessions: [`Transaction`].
//! - [`run_transaction`]: [`Client::transaction`], which runs a closure in
//!   one and again as a whole when it ends before its commit.
//! - [`migrate`]: [`Client::migrate`]: schema migrations, applied once
//!   each however many processes ask.
//! - [`blocking`]: the same for programs without an async runtime.
//! - `inside`: calls refused inside the client's own transaction function
//!   (they would wait for the writer it holds).
//!
//! The client's error is the wire error ([`scribe_protocol::WriteError`]):
//! the categories are the same on both sides of the socket, so one enum
//! serves both, and local failures (no socket, deadline passed) map onto
//! the same categories.

pub mod autostart;
pub mod blocking;
pub mod client;
pub mod connection;
mod inside;
pub mod migrate;
pub mod options;
pub mod retry;
pub mod run_transaction;
pub mod script;
pub mod transaction;

pub use client::{Client, ClientStats};
pub use connection::Connection;
pub use options::Options;
pub use scribe_protocol::Undone;
pub use scribe_protocol::WriteError as Error;
pub use transaction::Transaction;
