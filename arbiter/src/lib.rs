//! `scribed`: the sole writer of one SQLite database.
//!
//! Every other process reads the file directly and sends its writes here
//! over RPC; the arbiter queues them, commits them in groups, and answers
//! each caller once its write is committed.
//!
//! # Layout
//!
//! - [`cli`]: `scribed`'s flags and `main`.
//! - [`config`]: everything the arbiter is told, in one struct.
//! - [`daemon`]: the arbiter's life in order: lock, open, bind, serve, drain.
//! - [`db`]: the one funnel that opens the read-write connection.
//! - [`guard`]: the authorizer: SQL that would break the arrangement is refused.
//! - [`exec`]: runs one batch's statements on that connection.
//! - [`writer`]: the writer thread and its bounded queue.
//! - [`group`]: one group commit: a transaction, a savepoint per batch.
//! - [`requests`]: idempotency keys and their retention.
//! - [`checkpoint`]: PASSIVE checkpoints off the writer's thread.
//! - [`budget`]: the per-batch time budget (progress handler).
//! - [`stats`]: counters behind `status`.
//! - [`socket`]: binds the RPC socket atomically with mode 0600.
//! - [`service`]: the RPC handlers (thin: they enqueue and await).
//! - [`closing`]: a transport whose read side ends at shutdown.
//! - [`http`]: HTTP/1.1 + JSON on a second socket, onto the same queue.
//! - [`server`]: the accept loop, `run(listener, shutdown)`.
//! - [`error`]: this crate's error.

pub mod budget;
pub mod checkpoint;
pub mod cli;
pub mod closing;
pub mod config;
pub mod daemon;
pub mod db;
pub mod error;
pub mod exec;
pub mod group;
pub mod guard;
pub mod http;
pub mod requests;
pub mod server;
pub mod service;
pub mod socket;
pub mod stats;
pub mod writer;

pub use config::{Config, Synchronous};
pub use error::Error;
