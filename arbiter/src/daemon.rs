//! The arbiter's life, in order: lock, open, bind, serve, drain, exit.

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use scribe_protocol::lockfile::{self as lock, InstanceLock};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::error::Error;
use crate::inflight::Inflight;
use crate::opening::{Opened, Start};
use crate::peers::Peers;
use crate::server;
use crate::state::{Shared, StopReason};
use crate::stats::Stats;
use crate::writer;

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
    crate::early::install();
    crate::filesize::lift();
    crate::opening::started_at();
    run_until(config, signals())
}

/// Runs the arbiter until `shutdown` resolves (with why), or a stop
/// begins another way (`stop`, idle, a failure). Tests pass their own
/// future; [`run`] passes SIGINT|SIGTERM.
///
/// # Errors
///
/// As [`run`].
pub fn run_until(
    config: Config,
    shutdown: impl std::future::Future<Output = StopReason>,
) -> Result<Exit, Error> {
    let paths = config.paths.clone();
    check_directory(&paths.db)?;
    crate::walhold::refuse_orphan(&paths)?;
    let Some(mut lock) = InstanceLock::try_acquire(&paths)? else {
        return Ok(Exit::AlreadyRunning(holder_pid(&paths.lock)));
    };
    let migrations = config.migrations.clone();
    let config_records = config.record_failed_start;
    // The previous arbiter's record, before this one writes its own.
    let previous = scribe_protocol::lockfile::read_info(&paths.lock);
    lock.carry(&previous);
    let opened = match crate::opening::open(config, &mut lock, &previous) {
        Ok(Start::Opened(opened)) => *opened,
        Ok(Start::Stopped(exit)) => return Ok(exit),
        Err(e) => {
            // Before the lock goes: auto-starters hold back rather than
            // start one arbiter after another that fails the same way.
            if e.repeats() && config_records {
                if let Err(why) = lock.record_failed(&paths, &e.to_string(), migrations.as_deref())
                {
                    warn!(error = %why, "cannot record the failed start in the lock record");
                }
            }
            return Err(e);
        }
    };
    let Opened {
        session,
        seq,
        schema_version,
        wal_hold,
        runtime,
        listeners,
        config,
    } = opened;
    let db_file = session.file.1;
    let wal_pages = session.wal_pages.clone();
    let lock = Arc::new(lock);
    let stats = Arc::new(Stats::new(seq.max(schema_version.1)));
    stats.set_schema_version(schema_version.0);
    let foreign_keys = session.foreign_keys.default_on();
    let (answers, answers_rx) = writer::Answers::runtime();
    let settings = writer::Settings {
        answers,
        capacity: config.queue_capacity,
        max_group: config.max_group,
        retention: config.retention,
        prune_every: config.prune_every,
        limits: config.limits.clone(),
        durable: config.synchronous == crate::config::Synchronous::Full,
        sessions: writer::SessionLimits {
            idle: config.session_idle,
            total: config.session_total,
        },
    };
    let (writer, thread) = writer::spawn(session, settings, stats.clone())
        .map_err(|e| Error::io("starting the writer thread", e))?;
    let checkpointer = crate::checkpoint::Checkpointer::start(&paths.db, stats.clone(), wal_pages)
        .map_err(|source| Error::Open {
            path: paths.db.clone(),
            source,
        })?;
    let (spin, started) = (config.spin, Instant::now());
    let room = crate::fdlimit::cap(config.max_connections);
    let shared = Arc::new(Shared {
        peers: Peers::new(
            config.allowed.clone(),
            room.connections,
            config.max_peer_connections,
            room.descriptors,
        ),
        inflight: Inflight::new(config.max_inflight_bytes, config.limits.max_values),
        config,
        writer,
        stats,
        started,
        shutdown: CancellationToken::new(),
        reason: OnceLock::new(),
        last_call_ms: AtomicU64::new(0),
        spin: Arc::new(crate::spin::Spin::new(spin, started)),
        drained: watch::channel(None).0,
        in_flight: AtomicUsize::new(0),
        fault: OnceLock::new(),
        sessions: AtomicU64::new(0),
        checkpointer: Mutex::new(Some(checkpointer)),
        foreign_keys,
        db_file,
    });
    let drained = runtime.block_on(async {
        let p = &shared.config.paths;
        info!(
            pid = std::process::id(),
            db = %p.db.display(),
            socket = %p.socket.display(),
            http = %p.http_socket.display(),
            synchronous = shared.config.synchronous.as_str(),
            seq = shared.stats.seq(),
            "ready"
        );
        tokio::spawn(crate::watch::files(shared.clone(), lock.clone()));
        tokio::spawn(writer::Answers::dispatch(answers_rx));
        tokio::spawn(shared.writer.flusher());
        server::run(listeners, shared.clone(), shutdown).await
    });
    drop(runtime);
    let joined = thread.join();
    // Restart the grace period from the moment the arbiter is gone.
    shared.mark_stopping(Duration::ZERO);
    // The WAL is done with (the writer's last checkpoint is made): an
    // arbiter for a file now at this path may use it.
    drop(wal_hold);
    drop(lock);
    if joined.is_err() || shared.reason.get() == Some(&StopReason::WriterFailed) {
        error!("the writer thread failed; exiting with an error");
        return Err(Error::io(
            "the writer thread failed",
            std::io::Error::other("see the log above"),
        ));
    }
    if let Some(why) = shared.fault.get() {
        return Err(Error::io(why.clone(), std::io::Error::other("stopped")));
    }
    info!(drained, "stopped");
    Ok(Exit::Stopped { drained })
}

/// Resolves on SIGTERM or SIGINT (never, if the handlers cannot be set).
async fn signals() -> StopReason {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        warn!("cannot install signal handlers; stop with `scribe stop`");
        return std::future::pending().await;
    };
    // One that came before these handlers, while it started (see `early`).
    if let Some(name) = crate::early::received() {
        info!(signal = name, "stop requested while starting");
        return StopReason::Signal(name);
    }
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!(signal = name, "stop requested");
    StopReason::Signal(name)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_until_its_shutdown_future_then_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let paths = scribe_protocol::Paths::for_db(&dir.path().join("d.db"), None).unwrap();
        let config = Config::new(paths.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let arbiter = std::thread::spawn(move || {
            run_until(config, async move {
                let _ = rx.await;
                StopReason::Signal("test")
            })
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&paths.socket).is_err() {
            assert!(Instant::now() < deadline, "never ready");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(paths.http_socket.exists(), "HTTP is bound before RPC");
        assert!(lock::is_held(&paths).unwrap());
        tx.send(()).unwrap();
        assert_eq!(
            arbiter.join().unwrap().unwrap(),
            Exit::Stopped { drained: 0 }
        );
        assert!(!paths.socket.exists() && !paths.http_socket.exists());
        assert!(!lock::is_held(&paths).unwrap());
    }
}
