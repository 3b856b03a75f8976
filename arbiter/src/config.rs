//! Everything the arbiter is told, in one struct.

use std::time::Duration;

use scribe_protocol::Paths;

/// `PRAGMA synchronous` for the writer connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Synchronous {
    /// Every commit is fsynced: an acknowledged write survives power loss.
    Full,
    /// WAL commits are not fsynced: survives a process crash, not power loss.
    Normal,
}

impl Synchronous {
    /// The pragma's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        }
    }
}

/// Default write queue capacity: beyond it callers get `Overloaded`.
pub const QUEUE_CAPACITY: usize = 4096;
/// Default most batches committed in one group.
pub const MAX_GROUP: usize = 1024;
/// `busy_timeout` of the writer connection; nothing else writes, so it only
/// matters against outside tools that open the file for writing.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default most connections served at once (each costs a task and two
/// small buffers; beyond it connections are closed at accept).
pub const MAX_CONNECTIONS: usize = 1024;
/// Default most connections one peer process may hold (a quarter of the
/// total): one process cannot take every place.
pub const MAX_PEER_CONNECTIONS: usize = 256;
/// Default longest string or blob SQLite will make on the writer
/// (`SQLITE_LIMIT_LENGTH`).
pub const MAX_VALUE_BYTES: u64 = 64 * 1024 * 1024;
/// Default most heap SQLite may use in the arbiter
/// (`sqlite3_hard_heap_limit64`; 0 for none).
pub const MAX_HEAP_BYTES: u64 = 512 * 1024 * 1024;
/// Default longest wait between two calls of a write session: it holds
/// the writer meanwhile, so this is short.
pub const SESSION_IDLE: Duration = Duration::from_secs(1);
/// Default time a connection may stay silent before it is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Time a new connection has to say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a caller may take none of its answers before it is
/// closed (`stall.rs`): long, since the socket shows a slow reader's
/// progress only buffer-chunk by chunk (about 36 KB), as nginx's
/// `send_timeout` (60 s) is.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a drain is expected to take; the stopping marker written when a
/// stop begins lasts this long plus the grace period, so a stop that dies
/// half-way cannot keep auto-start off for ever.
pub const DRAIN_BOUND: Duration = Duration::from_secs(60);
/// Longest wait for in-flight replies to be sent at shutdown.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The arbiter's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Database and derived paths.
    pub paths: Paths,
    /// Durability of commits.
    pub synchronous: Synchronous,
    /// Capacity of the write queue.
    pub queue_capacity: usize,
    /// Most batches in one commit.
    pub max_group: usize,
    /// Peers allowed to connect (by uid or group); the arbiter's own uid
    /// by default.
    pub allowed: crate::allowed::Allowed,
    /// After a stop (signal or `scribe stop` without its own grace), how
    /// long auto-start stays off.
    pub stop_grace: Duration,
    /// Exit (draining first) after this long without any call.
    pub idle_exit: Option<Duration>,
    /// Time one batch may run before it is interrupted.
    pub batch_budget: Duration,
    /// How long idempotency keys are kept.
    pub retention: crate::requests::Retention,
    /// How often idle time is used to prune idempotency keys.
    pub prune_every: Duration,
    /// How long the socket thread polls after a call before it sleeps
    /// (see [`crate::spin`]); zero: never.
    pub spin: Duration,
    /// Settings of the writer connection, applied right after
    /// `busy_timeout`: `(name, value)`.
    pub pragmas: Vec<(String, String)>,
    /// Trusted extensions loaded at open.
    pub extensions: Vec<std::path::PathBuf>,
    /// Group owning the socket (mode 0660) instead of owner-only.
    pub socket_group: Option<String>,
    /// Most connections served at once.
    pub max_connections: usize,
    /// Most connections one peer process may hold.
    pub max_peer_connections: usize,
    /// Most bytes all requests in flight may hold.
    pub max_inflight_bytes: u64,
    /// Longest string or blob the writer connection makes.
    pub max_value_bytes: u64,
    /// Most heap SQLite may use in the arbiter (0: no limit).
    pub max_heap_bytes: u64,
    /// Longest a write session may wait between two calls.
    pub session_idle: Duration,
    /// Longest a write session may last.
    pub session_total: Duration,
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// A new connection must say hello (an HTTP request its head, and then
    /// its body) within this.
    pub hello_timeout: Duration,
    /// A caller that takes none of its answers for this long is closed.
    pub send_timeout: Duration,
    /// Request limits (announced at hello).
    pub limits: scribe_protocol::limits::Limits,
    /// The operator's migrations, applied at open before the sockets.
    pub migrations: Option<std::path::PathBuf>,
    /// A start that fails is recorded for auto-starters to hold back
    /// (see `scribe_protocol::failed_start`): only when its settings are
    /// those an auto-started arbiter takes (the conf's, no setting given
    /// on the command line), which its failure then speaks for.
    pub record_failed_start: bool,
}

impl Config {
    /// Defaults for a database.
    pub fn new(paths: Paths) -> Self {
        Config {
            paths,
            synchronous: Synchronous::Full,
            queue_capacity: QUEUE_CAPACITY,
            max_group: MAX_GROUP,
            allowed: crate::allowed::Allowed {
                uids: vec![nix::unistd::getuid().as_raw()],
                gids: Vec::new(),
            },
            stop_grace: scribe_protocol::stopmarker::STOP_GRACE,
            idle_exit: None,
            batch_budget: crate::budget::BATCH_BUDGET,
            retention: crate::requests::Retention::default(),
            prune_every: Duration::from_secs(60),
            spin: scribe_protocol::spin::window_from_env(),
            pragmas: Vec::new(),
            extensions: Vec::new(),
            socket_group: None,
            max_connections: MAX_CONNECTIONS,
            max_peer_connections: MAX_PEER_CONNECTIONS,
            max_inflight_bytes: crate::inflight::MAX_INFLIGHT_BYTES,
            max_value_bytes: MAX_VALUE_BYTES,
            max_heap_bytes: MAX_HEAP_BYTES,
            session_idle: SESSION_IDLE,
            session_total: crate::budget::BATCH_BUDGET,
            idle_timeout: IDLE_TIMEOUT,
            hello_timeout: HELLO_TIMEOUT,
            send_timeout: SEND_TIMEOUT,
            limits: scribe_protocol::limits::Limits::default(),
            migrations: None,
            record_failed_start: true,
        }
    }
}
