//! `scribed`: the sole writer of one SQLite database.
//!
//! Every other process reads the file directly and sends its writes here
//! over RPC; the arbiter queues them, commits them in groups, and answers
//! each caller once its write is committed.
//!
//! # Layout
//!
//! - [`cli`]: `scribed`'s flags and `main`.
//! - [`conf_file`]: `<db>.scribe.conf`, read into flags.
//! - [`config`]: everything the arbiter is told, in one struct.
//! - [`daemon`]: the arbiter's life in order: lock, open, bind, serve, drain.
//! - [`early`]: SIGTERM and SIGINT before it serves (migrations at open).
//! - [`opening`]: the start, lock to sockets bound; a failed one is recorded.
//! - [`db`]: the one funnel that opens the read-write connection.
//! - [`schema`]: scribe's own tables, their version and upgrade steps, and
//!   the texts of the arbiter's own statements.
//! - [`guard`]: the authorizer: SQL that would break the arrangement is refused.
//! - [`exec`]: runs one batch's statements on that connection.
//! - [`several`]: whether a statement's text holds more than one.
//! - [`sql_error`]: a statement's failure as the wire error it is answered
//!   with.
//! - [`writer`]: the writer thread, its bounded queue, and the syncer.
//! - [`group`]: one group commit: the writer's connection, a transaction.
//! - [`foreign_keys`]: whether each request's writes are checked
//!   against foreign keys (SQLite's per-connection pragma, per request).
//! - [`attempt`]: a group's batches: with no savepoint first, with one per
//!   batch when a batch failed.
//! - [`seq`]: each commit's sequence number, as readers see it.
//! - [`requests`]: idempotency keys and their retention.
//! - [`keyindex`]: where each key's row is, in memory (the table has no
//!   index on the key).
//! - [`keyrecord`]: how keys are stored: a commit's keys share rows.
//! - [`keyprune`]: deleting keys past the count and the window.
//! - [`outside`]: the key table changed by another connection (a restore
//!   into the live file), noticed at each transaction.
//! - [`migrations`]: the program's schema migrations, applied once each.
//! - [`checkpoint`]: PASSIVE checkpoints off the writer's thread.
//! - [`budget`]: the per-batch time budget (progress handler).
//! - [`stats`]: counters behind `status`.
//! - [`fileid`]: a file's identity, to notice a path that changed under us.
//! - [`socket`]: binds a socket atomically with mode 0600, keeps it in place.
//! - [`stall`]: a caller that reads none of its answers is closed.
//! - [`fdlimit`]: the open-files limit raised, and the connections it holds.
//! - [`filesize`]: an inherited file-size limit lifted, `SIGXFSZ` ignored.
//! - [`spin`]: the socket thread polls for a moment after each call (`--spin`).
//! - [`state`]: the shared state both adapters and the daemon see.
//! - [`peers`]: who may hold a connection, and how many; [`allowed`]: the
//!   uids and groups let in; [`warn_limit`]: one log line a second per
//!   kind of refusal and uid.
//! - [`inflight`]: the memory all requests in flight may hold.
//! - [`watch`]: the writer, idleness, the tick, the database, WAL and lock
//!   files; [`walrestore`]: a deleted WAL copied back before the stop;
//!   [`walhold`]: one arbiter at a time on the WAL at a path, and a WAL
//!   another file left there set aside.
//! - [`rpc`]: the RPC adapter: scribe's framing on the RPC socket.
//! - [`http`]: the HTTP adapter: HTTP/1.1 + JSON on a second socket.
//! - [`sessions`]: the write sessions of one connection (either adapter).
//! - [`server`]: `run(listeners, shared, shutdown)`: both adapters, then
//!   the drain.
//! - [`error`]: this crate's error.

pub mod allowed;
pub mod attempt;
pub mod budget;
pub mod checkpoint;
pub mod cli;
pub mod conf_file;
pub mod config;
pub mod daemon;
pub mod db;
pub mod early;
pub mod error;
pub mod exec;
pub mod fdlimit;
pub mod fileid;
pub mod filesize;
pub mod foreign_keys;
pub mod group;
pub mod guard;
pub mod http;
pub mod inflight;
pub mod keyindex;
pub mod keyprune;
pub mod keyrecord;
pub mod migrations;
pub mod opening;
pub mod outside;
pub mod peers;
pub mod requests;
pub mod rpc;
pub mod schema;
pub mod seq;
pub mod server;
pub mod sessions;
pub mod several;
pub mod socket;
pub mod spin;
pub mod sql_error;
pub mod stall;
pub mod state;
pub mod stats;
pub mod walhold;
pub mod walrestore;
pub mod warn_limit;
pub mod watch;
pub mod writer;

pub use config::{Config, Synchronous};
pub use error::Error;
