//! What a bench run is, and what a worker reports back.

use serde::{Deserialize, Serialize};

/// How writes reach the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Through the arbiter (the client library, keys and retries on).
    Scribe,
    /// Each process its own connection, `BEGIN IMMEDIATE` per write, BUSY
    /// retried and counted.
    Direct,
    /// As `direct`, inside an exclusive `flock` on a side file per write.
    Flock,
}

impl Target {
    /// Its name in output.
    pub fn name(self) -> &'static str {
        match self {
            Target::Scribe => "scribe",
            Target::Direct => "direct",
            Target::Flock => "flock",
        }
    }
}

/// What the workers do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// One 100-byte row per request.
    Insert,
    /// Claim tasks from a shared table; a task must never be claimed twice.
    Claim,
    /// Claim with a read-then-write transaction (SELECT a free task,
    /// choose in code, compare-and-set UPDATE, insert a run, COMMIT):
    /// scribe runs it as a write session, direct SQLite as `BEGIN
    /// IMMEDIATE` with BUSY retried.
    Session,
    /// `--batch-size` rows per request.
    Batch,
    /// The kanban mix: creators, a dispatcher, workers, reclaims.
    Kanban,
}

impl Workload {
    /// Its name in output.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Insert => "insert",
            Workload::Claim => "claim",
            Workload::Session => "session",
            Workload::Batch => "batch",
            Workload::Kanban => "kanban",
        }
    }
}

/// `synchronous` for every target of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Sync {
    /// fsync every commit.
    Full,
    /// fsync at checkpoints only.
    Normal,
}

impl Sync {
    /// Its name in output and in pragmas.
    pub fn name(self) -> &'static str {
        match self {
            Sync::Full => "full",
            Sync::Normal => "normal",
        }
    }
}

/// Everything one worker process is told (passed as JSON on its command
/// line).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerSpec {
    /// How it writes.
    pub target: Target,
    /// What it does.
    pub workload: Workload,
    /// Its number, 0-based.
    pub id: u32,
    /// The database.
    pub db: String,
    /// Requests to make (when `seconds` is zero).
    pub writes: u64,
    /// Run for this many seconds instead of a count.
    pub seconds: f64,
    /// Rows per request for `batch`.
    pub batch_size: u32,
    /// `synchronous` for direct connections.
    pub sync: Sync,
    /// Created by the orchestrator when every worker is ready.
    pub go: String,
    /// Created by the orchestrator to stop timed workers and readers.
    pub stop: String,
    /// Where the worker writes its [`WorkerReport`].
    pub out: String,
    /// Kanban role (`creator`, `worker`, `dispatcher`, `dashboard`) or
    /// `reader`.
    pub role: Option<String>,
    /// The dashboard draws a progress bar (the demo).
    #[serde(default)]
    pub progress: bool,
    /// Writes in flight at once on the worker's one connection (scribe).
    #[serde(default = "one")]
    pub in_flight: u32,
}

fn one() -> u32 {
    1
}

/// What a worker reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Requests acknowledged.
    pub ops: u64,
    /// Rows written by those requests.
    pub rows: u64,
    /// Tries that met SQLITE_BUSY (direct) or were retried (scribe).
    pub busy_retries: u64,
    /// Requests refused because another process got there first.
    pub conflicts: u64,
    /// User and system time this process spent between its start and end,
    /// microseconds.
    #[serde(default)]
    pub cpu_us: u64,
    /// Unix microseconds when it started and ended its work.
    pub start_us: u64,
    /// See `start_us`.
    pub end_us: u64,
    /// Latency of each acknowledged request, microseconds, per kind.
    pub latencies: Vec<(String, Vec<u32>)>,
    /// Ids it claimed (`claim`), for the no-double-claim check.
    pub claimed: Vec<i64>,
    /// Reader queries per second, idle and under load (readers only).
    pub reader_qps: Option<(f64, f64)>,
    /// The reader's CPU per query, µs, idle and under load: what a query
    /// costs apart from how much of the CPU the reader was given.
    #[serde(default)]
    pub reader_cpu_us: Option<(f64, f64)>,
    /// Anything that went wrong.
    pub errors: Vec<String>,
    /// Kanban: tasks this worker completed (acknowledged).
    #[serde(default)]
    pub completed: Vec<String>,
    /// Kanban: conflicts that had to happen and did (a late or second
    /// complete, a heartbeat after a reclaim).
    #[serde(default)]
    pub caught: u64,
    /// Kanban: tasks taken back by the dispatcher.
    #[serde(default)]
    pub reclaims: u64,
    /// Kanban: tasks created (not counting refused key reuses).
    #[serde(default)]
    pub created: u64,
    /// Kanban: creations refused because the idempotency key was reused.
    #[serde(default)]
    pub deduplicated: u64,
    /// Kanban: this worker "died" (exited without finishing its task).
    #[serde(default)]
    pub died: bool,
    /// Kanban: invariant violations the dashboard saw during the run.
    #[serde(default)]
    pub violations: Vec<String>,
}

/// Unix microseconds now.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
