//! The arbiter's self-report.

use serde::{Deserialize, Serialize};

/// What `scribe status` shows. All counters are since the arbiter started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Process id of the arbiter.
    pub pid: u32,
    /// Milliseconds since the arbiter started.
    pub uptime_ms: u64,
    /// The database file.
    pub db: String,
    /// The RPC socket.
    pub socket: String,
    /// Protocol version spoken.
    pub protocol_version: u32,
    /// Package version of the arbiter.
    pub server_version: String,
    /// `full` or `normal`.
    pub synchronous: String,
    /// Writes waiting in the queue right now.
    pub queue_depth: u64,
    /// Capacity of the queue (beyond it callers get `Overloaded`).
    pub queue_capacity: u64,
    /// Commits (groups) done.
    pub commits: u64,
    /// Batches committed.
    pub writes: u64,
    /// Batches that failed (SQL error, conflict…) and were rolled back alone.
    pub failed: u64,
    /// Batches answered from their idempotency key (nothing written).
    pub replayed: u64,
    /// Requests refused with `Overloaded` (queue full, or past their own
    /// `wait_ms`).
    pub overloaded: u64,
    /// Mean batches per commit.
    pub mean_group: f64,
    /// Largest group committed at once.
    pub max_group: u64,
    /// Median commit duration (BEGIN to COMMIT returned), microseconds,
    /// over the recent commits.
    pub commit_p50_us: u64,
    /// 99th percentile of the same.
    pub commit_p99_us: u64,
    /// Size of the `-wal` file in bytes.
    pub wal_bytes: u64,
    /// The last committed sequence number.
    pub seq: u64,
    /// The last error the writer met, if any.
    pub last_error: Option<String>,
    /// True while the arbiter drains before exiting.
    pub stopping: bool,
    /// How long the group being committed right now has been running,
    /// milliseconds (0 when the writer is idle).
    pub writing_for_ms: u64,
    /// The operator's settings of the writer connection (`--pragma`,
    /// `--load-extension`).
    pub settings: Vec<String>,
    /// Time budget of one batch, milliseconds.
    pub batch_budget_ms: u64,
    /// Syncs of the WAL made for `--synchronous full` (each covers every
    /// commit made before it began).
    pub syncs: u64,
    /// Mean time of one of those syncs, microseconds.
    pub sync_mean_us: u64,
    /// The write session the writer serves now, if one is open.
    pub session: Option<crate::session::SessionInfo>,
    /// The program's schema version: its last applied migration (0: none).
    #[serde(default)]
    pub schema_version: u64,
    /// The version of the SQLite the arbiter writes with.
    #[serde(default)]
    pub sqlite_version: String,
    /// Idempotency keys held (their index is in the arbiter's memory).
    #[serde(default)]
    pub keys: u64,
    /// At most this many are kept (`--max-keys`).
    #[serde(default)]
    pub max_keys: u64,
    /// Whether a write that does not say (`Batch::foreign_keys`) is
    /// checked against foreign keys: `PRAGMA foreign_keys` as the
    /// operator's settings left the writer connection.
    #[serde(default)]
    pub foreign_keys: bool,
}
