//! The RPC handlers. Thin: they check the handshake, enqueue and await.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use scribe_protocol::{
    Arbiter, Batch, Hello, Receipt, Status, StopReport, StopRequest, WriteError, PROTOCOL_VERSION,
};
use tarpc::context::Context;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
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
}

impl Shared {
    /// Begins shutdown for `reason` (the first reason wins).
    pub fn begin_shutdown(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.shutdown.cancel();
    }

    /// Notes a call, for `--idle-exit`.
    pub fn touch(&self) {
        self.last_call_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// One connection's view of the service; cloned per request.
#[derive(Clone, Debug)]
pub struct Service {
    shared: Arc<Shared>,
    greeted: Arc<AtomicBool>,
}

impl Service {
    /// A service for a new connection (not yet greeted).
    pub fn new(shared: Arc<Shared>) -> Self {
        Service {
            shared,
            greeted: Arc::new(AtomicBool::new(false)),
        }
    }

    fn check_greeted(&self) -> Result<InFlight, WriteError> {
        if !self.greeted.load(Ordering::Acquire) {
            return Err(WriteError::Protocol {
                message: "the first call on a connection must be hello(version)".into(),
            });
        }
        self.shared.touch();
        Ok(InFlight::new(&self.shared))
    }

    /// The status report.
    pub fn status_now(shared: &Shared) -> Status {
        let s = shared.stats.snapshot();
        let paths = &shared.config.paths;
        Status {
            pid: std::process::id(),
            uptime_ms: shared.started.elapsed().as_millis() as u64,
            db: paths.db.display().to_string(),
            socket: paths.socket.display().to_string(),
            protocol_version: PROTOCOL_VERSION,
            server_version: env!("CARGO_PKG_VERSION").into(),
            synchronous: shared.config.synchronous.as_str().into(),
            queue_depth: shared.writer.depth(),
            queue_capacity: shared.writer.capacity(),
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
            last_error: s.last_error,
            stopping: shared.writer.is_stopping(),
            writing_for_ms: shared.stats.writing_for().as_millis() as u64,
            settings: shared
                .config
                .pragmas
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .chain(
                    shared
                        .config
                        .extensions
                        .iter()
                        .map(|e| format!("extension {}", e.display())),
                )
                .collect(),
            batch_budget_ms: shared.config.batch_budget.as_millis() as u64,
        }
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

impl Arbiter for Service {
    async fn hello(self, _: Context, version: u32) -> Result<Hello, WriteError> {
        if version != PROTOCOL_VERSION {
            tracing::warn!(
                client = version,
                server = PROTOCOL_VERSION,
                "protocol mismatch"
            );
            return Err(WriteError::Protocol {
                message: format!(
                    "client speaks protocol version {version}, this arbiter speaks version \
                     {PROTOCOL_VERSION}; use a client and an arbiter of the same release"
                ),
            });
        }
        self.greeted.store(true, Ordering::Release);
        Ok(Hello {
            protocol_version: PROTOCOL_VERSION,
            server_version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            limits: self.shared.config.limits.clone(),
        })
    }

    async fn write(self, _: Context, batch: Batch) -> Result<Receipt, WriteError> {
        let _guard = self.check_greeted()?;
        self.shared.writer.submit(batch).await
    }

    async fn status(self, _: Context) -> Result<Status, WriteError> {
        let _guard = self.check_greeted()?;
        Ok(Service::status_now(&self.shared))
    }

    async fn stop(self, _: Context, request: StopRequest) -> Result<StopReport, WriteError> {
        let _guard = self.check_greeted()?;
        tracing::info!(hold = request.hold, grace_ms = ?request.grace_ms, "stop requested");
        self.shared.begin_shutdown(StopReason::Requested(request));
        let mut drained = self.shared.drained.subscribe();
        let drained = match drained.wait_for(Option::is_some).await {
            Ok(v) => v.unwrap_or(0),
            Err(_) => 0,
        };
        Ok(StopReport {
            drained,
            pid: std::process::id(),
        })
    }
}
