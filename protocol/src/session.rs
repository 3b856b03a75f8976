//! Write sessions (interactive transactions): what a caller asks for when
//! it begins one, and what the arbiter grants and reports.
//!
//! A session's begin waits in the same queue as batches. At the front, the
//! writer finishes the group in hand, opens the transaction and serves
//! that one session until it commits, rolls back, or its lease lapses:
//! an idle limit between statements and a total limit, both capped by the
//! operator. A session belongs to the connection that began it: if that
//! connection ends, the transaction is rolled back at once.

use serde::{Deserialize, Serialize};

/// What a caller asks of a session's lease (the arbiter caps both by its
/// own settings; `None` takes the arbiter's). Unknown fields are refused
/// (JSON): a misspelt `wait_ms` would wait without a limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeginRequest {
    /// Longest wait between two calls of the session, milliseconds.
    pub idle_ms: Option<u64>,
    /// Longest life of the session, from its start, milliseconds.
    pub total_ms: Option<u64>,
    /// Longest the begin may wait for the writer (behind another session,
    /// say), milliseconds: past it, it is answered `Overloaded` and the
    /// session never begins. `None` waits as long as it takes.
    pub wait_ms: Option<u64>,
    /// Whether the session's writes are checked against foreign keys
    /// (`PRAGMA foreign_keys`, set before its transaction begins, as
    /// SQLite lets it change only outside one): `None` takes the
    /// arbiter's setting.
    pub foreign_keys: Option<bool>,
}

/// The lease in force for a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Longest wait between two calls, milliseconds.
    pub idle_ms: u64,
    /// Longest life from its start, milliseconds.
    pub total_ms: u64,
}

/// A session that has begun: the writer is serving it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Began {
    /// The session's id, valid on the connection that began it.
    pub session: u64,
    /// The lease in force.
    pub lease: Lease,
}

/// An open session, as `status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The peer's process id.
    pub pid: i32,
    /// The peer's user id.
    pub uid: u32,
    /// How long it has been open, milliseconds.
    pub age_ms: u64,
    /// Statements it has run so far.
    pub statements: u64,
}
