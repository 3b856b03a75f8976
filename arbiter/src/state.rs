//! The arbiter's shared state: what both adapters (the RPC service and
//! the HTTP routes) and the daemon see. It knows nothing of either
//! transport.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use scribe_protocol::{Status, StopRequest, PROTOCOL_VERSION};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::inflight::Inflight;
use crate::peers::Peers;
use crate::stats::Stats;
use crate::writer::WriterHandle;

/// State shared by every connection.
#[derive(Debug)]
pub struct Shared {
    /// The configuration the arbiter runs with.
    pub config: Config,
    /// The writer's queue.
    pub writer: WriterHandle,
    /// The writer's counters.
    pub stats: Arc<Stats>,
    /// When the arbiter started.
    pub started: Instant,
    /// Cancelled to begin shutdown (signal, `stop` or idle).
    pub shutdown: CancellationToken,
    /// Why the shutdown began (set once, before `shutdown` is cancelled).
    pub reason: OnceLock<StopReason>,
    /// Milliseconds since `started` of the latest call, for `--idle-exit`.
    pub last_call_ms: AtomicU64,
    /// Set to the drained count once the writer has finished the queue.
    pub drained: watch::Sender<Option<u64>>,
    /// Calls being handled right now; shutdown waits for zero so every
    /// answer is sent before the process exits.
    pub in_flight: AtomicUsize,
    /// Who holds connections, under the caps.
    pub peers: Arc<Peers>,
    /// The memory requests in flight hold.
    pub inflight: Arc<Inflight>,
    /// Why the arbiter cannot serve, once it knows (the database moved).
    pub fault: OnceLock<String>,
    /// Session ids handed out so far.
    pub sessions: std::sync::atomic::AtomicU64,
    /// The checkpointer, stopped before the writer's final checkpoint.
    pub checkpointer: std::sync::Mutex<Option<crate::checkpoint::Checkpointer>>,
    /// The socket thread's polling after calls.
    pub spin: Arc<crate::spin::Spin>,
    /// Whether requests that do not say are checked against foreign keys
    /// (the writer's setting at open).
    pub foreign_keys: bool,
    /// The database file the arbiter opened (see `watch::db_in_place`).
    pub db_file: crate::fileid::FileId,
}

/// Why the arbiter stops.
#[derive(Clone, Debug, PartialEq)]
pub enum StopReason {
    /// `scribe stop` (with its hold and grace).
    Requested(StopRequest),
    /// SIGTERM or SIGINT.
    Signal(&'static str),
    /// No call for the `--idle-exit` period: no stopping marker, so the
    /// next caller simply starts it again.
    Idle,
    /// The writer thread died; exit non-zero so a supervisor restarts it.
    WriterFailed,
    /// The database path no longer names the file the arbiter opened, nor
    /// any (moved away): the stopping marker holds auto-start off for the
    /// grace period, rather than make a new empty file there at once; it
    /// names the file, and holds nothing back once that file is back.
    Moved,
    /// The database path names another file now (a restore renamed one
    /// over it): no stopping marker, so the next caller starts a new
    /// arbiter on that file at once (it waits for this one to let go of
    /// the WAL, see `walhold`).
    Replaced,
    /// The database file was deleted (no name is left to it): no
    /// stopping marker, so that the next caller starts a new arbiter on a
    /// new file at once, as SQLite makes one for a new connection.
    Deleted,
    /// The WAL was deleted or replaced under the arbiter: no stopping
    /// marker, so that the next caller starts a new one at once.
    WalLost,
    /// Another process took the arbiter's socket: nobody could reach it.
    /// No stopping marker: the next caller starts one that says why it
    /// cannot bind, or binds a name of its own.
    Displaced,
}

impl Shared {
    /// The status report.
    pub fn status(&self) -> Status {
        let s = self.stats.snapshot();
        let paths = &self.config.paths;
        Status {
            pid: std::process::id(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
            db: paths.db.display().to_string(),
            socket: paths.socket.display().to_string(),
            protocol_version: PROTOCOL_VERSION,
            server_version: env!("CARGO_PKG_VERSION").into(),
            synchronous: self.config.synchronous.as_str().into(),
            queue_depth: self.writer.depth(),
            queue_capacity: self.writer.capacity(),
            commits: s.commits,
            writes: s.writes,
            failed: s.failed,
            replayed: s.replayed,
            overloaded: s.overloaded,
            mean_group: s.mean_group,
            max_group: s.max_group,
            commit_p50_us: s.p50_us,
            commit_p99_us: s.p99_us,
            wal_bytes: std::fs::metadata(paths.wal()).map_or(0, |m| m.len()),
            seq: s.seq,
            last_error: self.fault.get().cloned().or(s.last_error),
            stopping: self.writer.is_stopping(),
            writing_for_ms: self.stats.writing_for().as_millis() as u64,
            settings: self
                .config
                .pragmas
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .chain(
                    self.config
                        .extensions
                        .iter()
                        .map(|e| format!("extension {}", e.display())),
                )
                .collect(),
            batch_budget_ms: self.config.batch_budget.as_millis() as u64,
            syncs: self.stats.syncs().0,
            sync_mean_us: self.stats.syncs().1,
            session: self.stats.open_session(),
            schema_version: self.stats.schema_version(),
            sqlite_version: rusqlite::version().into(),
            keys: self.stats.keys(),
            max_keys: self.config.retention.max_keys,
            foreign_keys: self.foreign_keys,
        }
    }

    /// Begins shutdown for `reason` (the first reason wins).
    pub fn begin_shutdown(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.shutdown.cancel();
    }

    /// Stops the checkpointer (the writer's final TRUNCATE must not meet
    /// one of its checkpoints).
    pub fn stop_checkpointer(&self) {
        let taken = self
            .checkpointer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mut c) = taken {
            c.stop();
        }
    }

    /// Writes the stopping marker so that auto-start does not respawn the
    /// arbiter (except after an idle exit or a writer failure): `extra` +
    /// the grace period from now.
    pub fn mark_stopping(&self, extra: std::time::Duration) {
        use scribe_protocol::stopmarker::{self, Marker};
        let grace = self.config.stop_grace;
        let marker = match self.reason.get() {
            None
            | Some(
                StopReason::Idle
                | StopReason::WriterFailed
                | StopReason::WalLost
                | StopReason::Deleted
                | StopReason::Replaced
                | StopReason::Displaced,
            ) => return,
            Some(StopReason::Requested(r)) if r.hold => Marker::Hold,
            // No grace (`scribe restart`, `stop --grace 0`): auto-start may
            // resume at once, so callers that arrive during the drain retry
            // rather than give up on a marker (7 of 2,000 writes of a
            // retrying client failed across a restart).
            Some(StopReason::Requested(r)) if r.grace_ms == Some(0) => return,
            Some(StopReason::Requested(r)) => {
                Marker::for_next(extra + r.grace_ms.map_or(grace, std::time::Duration::from_millis))
            }
            Some(StopReason::Signal(_) | StopReason::Moved) => Marker::for_next(extra + grace),
        };
        let path = &self.config.paths.stop_marker;
        // Stopped on its own: the marker says why, for `status`.
        let why = match self.reason.get() {
            Some(StopReason::Moved) => self.fault.get().map(String::as_str),
            _ => None,
        };
        let file = matches!(self.reason.get(), Some(StopReason::Moved)).then(|| self.db_file.key());
        if let Err(e) = stopmarker::write_moved(&self.config.paths, marker, why, file) {
            tracing::warn!(error = %e, path = %path.display(), "cannot write the stopping marker");
        }
    }

    /// Notes a call, for `--idle-exit`.
    pub fn touch(&self) {
        self.touch_from(0);
    }

    /// Notes a call from process `pid` (0: not known).
    pub fn touch_from(&self, pid: i32) {
        let now = self.started.elapsed();
        self.spin.touch(pid, now);
        self.last_call_ms
            .store(now.as_millis() as u64, Ordering::Relaxed);
    }
}

/// Counts a call in flight for as long as it lives.
pub struct InFlight(Arc<Shared>);

impl InFlight {
    /// Counts one more call.
    pub fn new(shared: &Arc<Shared>) -> Self {
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Stops the arbiter once `listener`'s socket is taken by another
/// process (see `Listener::on_displaced`).
pub fn stop_when_displaced(
    listener: &mut crate::socket::Listener,
    shared: &std::sync::Arc<Shared>,
) {
    let shared = shared.clone();
    listener.on_displaced(move |why| {
        let _ = shared.fault.set(why.to_owned());
        shared.begin_shutdown(StopReason::Displaced);
    });
}
