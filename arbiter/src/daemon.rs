//! The arbiter's life, in order: lock, open, bind, serve, drain, exit.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use scribe_protocol::lockfile::{self as lock, InstanceLock};
use scribe_protocol::stopmarker::{self, Marker};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::{Config, DRAIN_BOUND, SHUTDOWN_TIMEOUT};
use crate::error::Error;
use crate::service::{Shared, StopReason};
use crate::stats::Stats;
use crate::{db, server, socket, writer};

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Another arbiter holds the lock (its pid, when it has recorded it).
    AlreadyRunning(Option<u32>),
    /// Served, drained this many queued writes, and stopped cleanly.
    Stopped {
        /// Writes that were queued when the stop began.
        drained: u64,
    },
}

/// Runs the arbiter in the foreground until SIGINT, SIGTERM or `stop`.
///
/// # Errors
///
/// Any failure to lock, open the database or bind the socket; each names
/// the path and the cause.
pub fn run(config: Config) -> Result<Exit, Error> {
    let paths = config.paths.clone();
    check_directory(&paths.db)?;
    let Some(mut lock) = InstanceLock::try_acquire(&paths.lock)? else {
        return Ok(Exit::AlreadyRunning(holder_pid(&paths.lock)));
    };
    lock.record(&paths.socket)?;
    let (session, seq) = db::open_writer(&config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the runtime", e))?;
    // Bound only now that the database is open: a socket that accepts
    // means a ready arbiter. If binding fails, nothing else was started.
    let group = config.socket_group.clone();
    let (listener, http) = runtime.block_on(async {
        Ok::<_, Error>((
            socket::bind(&paths.socket, group.as_deref())?,
            socket::bind(&paths.http_socket, group.as_deref())?,
        ))
    })?;
    let stats = Arc::new(Stats::new(seq));
    let (writer, thread) = writer::spawn(
        session,
        config.queue_capacity,
        config.max_group,
        config.retention,
        config.prune_every,
        config.limits.clone(),
        stats.clone(),
    )
    .map_err(|e| Error::io("starting the writer thread", e))?;
    let shared = Arc::new(Shared {
        config,
        writer,
        stats,
        started: Instant::now(),
        shutdown: CancellationToken::new(),
        reason: OnceLock::new(),
        last_call_ms: AtomicU64::new(0),
        drained: watch::channel(None).0,
        in_flight: AtomicUsize::new(0),
    });
    let mut checkpointer = crate::checkpoint::Checkpointer::start(&paths.db, shared.stats.clone())
        .map_err(|source| Error::Open {
            path: paths.db.clone(),
            source,
        })?;
    let drained = runtime.block_on(serve(listener, http, shared.clone(), &mut checkpointer));
    drop(runtime);
    let joined = thread.join();
    let _ = std::fs::remove_file(&paths.socket);
    let _ = std::fs::remove_file(&paths.http_socket);
    // Restart the grace period from the moment the arbiter is gone.
    mark_stopping(&shared, Duration::ZERO);
    drop(lock);
    if joined.is_err() || shared.reason.get() == Some(&StopReason::WriterFailed) {
        error!("the writer thread failed; exiting with an error");
        return Err(Error::io(
            "the writer thread failed",
            std::io::Error::other("see the log above"),
        ));
    }
    info!(drained, "stopped");
    Ok(Exit::Stopped { drained })
}

async fn serve(
    listener: tokio::net::UnixListener,
    http: tokio::net::UnixListener,
    shared: Arc<Shared>,
    checkpointer: &mut crate::checkpoint::Checkpointer,
) -> u64 {
    let paths = &shared.config.paths;
    info!(
        pid = std::process::id(),
        db = %paths.db.display(),
        socket = %paths.socket.display(),
        http = %paths.http_socket.display(),
        synchronous = shared.config.synchronous.as_str(),
        seq = shared.stats.seq(),
        "ready"
    );
    tokio::spawn(watch_signals(shared.clone()));
    tokio::spawn(watch_writer(shared.clone()));
    tokio::spawn(tick(shared.clone()));
    if let Some(idle) = shared.config.idle_exit {
        tokio::spawn(watch_idle(shared.clone(), idle));
    }
    let connections = TaskTracker::new();
    let closing = CancellationToken::new();
    let accepting = tokio::spawn(server::run(
        listener,
        shared.clone(),
        connections.clone(),
        closing.clone(),
    ));
    let accepting_http = tokio::spawn(crate::http::run(
        http,
        shared.clone(),
        connections.clone(),
        closing.clone(),
    ));
    shared.shutdown.cancelled().await;
    mark_stopping(&shared, DRAIN_BOUND);
    // The writer's final TRUNCATE checkpoint must not meet this one.
    checkpointer.stop();
    info!(
        queued = shared.writer.depth(),
        "stopping: draining the queue"
    );
    // New writes get ShuttingDown from here on; the queue drains.
    let drained = shared.writer.stop().await;
    while !shared.writer.is_closed() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    shared.drained.send_replace(Some(drained));
    // Stop accepting, remove the socket, then end every connection's read
    // side: each answers what it has in flight, flushes, and closes.
    accepting.abort();
    accepting_http.abort();
    let _ = accepting.await;
    let _ = accepting_http.await;
    let _ = std::fs::remove_file(&paths.socket);
    let _ = std::fs::remove_file(&paths.http_socket);
    closing.cancel();
    connections.close();
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, connections.wait())
        .await
        .is_err()
    {
        warn!(
            in_flight = shared.in_flight.load(Ordering::Acquire),
            "connections still open after the shutdown timeout"
        );
    }
    drained
}

/// Offers the writer a moment for housekeeping, every `prune_every`.
async fn tick(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(shared.config.prune_every).await;
        shared.writer.tick();
    }
}

/// Ends the arbiter if the writer thread stops on its own (a panic):
/// serving on without it would answer `ShuttingDown` for ever.
async fn watch_writer(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if shared.writer.is_closed() && !shared.writer.is_stopping() {
            error!("the writer thread stopped unexpectedly");
            shared.begin_shutdown(StopReason::WriterFailed);
            return;
        }
    }
}

/// Writes the stopping marker so that auto-start does not respawn the
/// arbiter (except after an idle exit): `extra` + the grace period from now.
fn mark_stopping(shared: &Shared, extra: Duration) {
    let marker = match shared.reason.get() {
        None | Some(StopReason::Idle | StopReason::WriterFailed) => return,
        Some(StopReason::Requested(r)) if r.hold => Marker::Hold,
        Some(StopReason::Requested(r)) => Marker::for_next(
            extra
                + r.grace_ms
                    .map_or(shared.config.stop_grace, Duration::from_millis),
        ),
        Some(StopReason::Signal(_)) => Marker::for_next(extra + shared.config.stop_grace),
    };
    let path = &shared.config.paths.stop_marker;
    if let Err(e) = stopmarker::write(path, marker) {
        warn!(error = %e, path = %path.display(), "cannot write the stopping marker");
    }
}

/// Stops the arbiter after `idle` without any call and with nothing queued.
async fn watch_idle(shared: Arc<Shared>, idle: Duration) {
    let tick = (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        tokio::time::sleep(tick).await;
        let now = shared.started.elapsed().as_millis() as u64;
        let quiet = now.saturating_sub(shared.last_call_ms.load(Ordering::Relaxed));
        if quiet >= idle.as_millis() as u64
            && shared.in_flight.load(Ordering::Acquire) == 0
            && shared.writer.depth() == 0
        {
            info!(idle_ms = quiet, "idle: stopping");
            shared.begin_shutdown(StopReason::Idle);
            return;
        }
    }
}

async fn watch_signals(shared: Arc<Shared>) {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("cannot install signal handlers; stop with `scribe stop`");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!(signal = name, "stop requested");
    shared.begin_shutdown(StopReason::Signal(name));
}

fn check_directory(db: &std::path::Path) -> Result<(), Error> {
    let dir = db.parent().unwrap_or(std::path::Path::new("/"));
    if !dir.is_dir() {
        return Err(Error::NoDirectory(dir.to_path_buf()));
    }
    if nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_err() {
        return Err(Error::DirectoryNotWritable(dir.to_path_buf()));
    }
    Ok(())
}

/// The pid recorded by the lock holder; it writes it right after locking,
/// so wait a moment for it.
fn holder_pid(path: &std::path::Path) -> Option<u32> {
    for _ in 0..50 {
        if let Some(pid) = lock::read_info(path).pid {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}
