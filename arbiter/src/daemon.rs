//! The arbiter's life, in order: lock, open, bind, serve, drain, exit.

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use scribe_protocol::lockfile::{self as lock, InstanceLock};
use scribe_protocol::starting::phase;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::error::Error;
use crate::inflight::Inflight;
use crate::peers::Peers;
use crate::server::{self, Listeners};
use crate::socket::Listener;
use crate::state::{Shared, StopReason};
use crate::stats::Stats;
use crate::{db, writer};

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
    started_at();
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
    // The record is for people and `status`; liveness is the lock. One
    // that cannot be written (another user's file in a sticky directory)
    // does not stop the start.
    // It also tells the clients that wait what it does until it serves
    // (see `scribe_protocol::starting`).
    let starting = |lock: &mut InstanceLock, phase: &str| {
        if let Err(e) = lock.record_starting(phase) {
            tracing::warn!(error = %e, "cannot write the lock record; the arbiter runs without it");
        }
    };
    starting(&mut lock, phase::OPENING);
    // The arbiter of a file that was at this path before a move or a
    // restore may still be draining into the WAL here (see `walhold`).
    let wal = paths.wal();
    if crate::walhold::wait_free(&wal, crate::walhold::WAIT_FOR_PREVIOUS, || {
        starting(&mut lock, phase::PREVIOUS);
    })? {
        starting(&mut lock, phase::OPENING);
        if let Some(signal) = crate::early::received() {
            return Ok(stopped_while_starting(&config, signal, None));
        }
        crate::walhold::stopped_meanwhile(&paths)?;
    }
    let (session, seq) = db::open_writer(&config)?;
    if let Some(signal) = crate::early::received() {
        return Ok(stopped_while_starting(&config, signal, None));
    }
    let wal_hold = crate::walhold::hold(&paths.wal())?;
    if let Some(dir) = &config.migrations {
        starting(&mut lock, &phase::migrating(dir));
    }
    let migrated = {
        let _watch = config
            .migrations
            .is_some()
            .then(|| crate::early::interrupt_on_signal(&session.conn));
        open_migrations(&config, &session)
    };
    // A stop signal while it opened or migrated (a migration interrupted
    // by it was rolled back whole): a stop, as it would be once serving.
    if let Some(signal) = crate::early::received() {
        let dir = config.migrations.clone();
        return Ok(stopped_while_starting(&config, signal, dir.as_deref()));
    }
    let schema_version = migrated?;
    let db_file = session.file.1;
    let wal_pages = session.wal_pages.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the runtime", e))?;
    // Bound only now that the database is open, the HTTP socket first: an
    // RPC socket that accepts means a ready arbiter, both sockets
    // included. If binding fails, nothing else was started.
    let group = config.socket_group.clone();
    // A derived name may be set aside (see `Listener::bind_or_aside`); a
    // given `--socket` is bound as given.
    let aside = |p: &std::path::Path| p != paths.socket || !paths.socket_given();
    let listeners = runtime.block_on(async {
        let http = Listener::bind_or_aside(
            &paths.http_socket,
            group.as_deref(),
            aside(&paths.http_socket),
        )?;
        let rpc = Listener::bind_or_aside(&paths.socket, group.as_deref(), aside(&paths.socket))?;
        Ok::<_, Error>(Listeners { rpc, http })
    })?;
    let mut config = config;
    let aside = listeners.rpc.path() != paths.socket || listeners.http.path() != paths.http_socket;
    if !aside {
        // The sockets, now that they are bound (see `record_starting`).
        if let Err(e) = lock.record(&paths.socket, &paths.http_socket) {
            tracing::warn!(error = %e, "cannot write the lock record; the arbiter runs without it");
        }
    } else {
        config.paths.socket = listeners.rpc.path().to_path_buf();
        config.paths.http_socket = listeners.http.path().to_path_buf();
        // Clients find a name set aside only in the record: without it,
        // this arbiter could not be reached.
        lock.record(&config.paths.socket, &config.paths.http_socket)
            .map_err(|e| Error::Bind {
                path: paths.socket.clone(),
                source: std::io::Error::other(format!(
                    "its name is taken by a file this user cannot replace, and the name set \
                     aside cannot be recorded for clients to find: {e}"
                )),
            })?;
    }
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

/// Ends a start that a stop signal interrupted: the stopping marker a
/// stop by signal leaves (auto-start off for the stop grace), and exit 0.
fn stopped_while_starting(
    config: &Config,
    signal: &str,
    migrations: Option<&std::path::Path>,
) -> Exit {
    use scribe_protocol::stopmarker::{self, Marker};
    let paths = &config.paths;
    // `scribe stop --hold` or `--grace` writes its own before it signals
    // one that is starting: that one stands (this one's grace, written
    // over it, kept auto-start off for a moment where it should not).
    // File times come from the kernel's coarse clock, a tick behind the
    // one `started_at` read: a margin of a few ticks.
    let since = started_at()
        .checked_sub(Duration::from_millis(20))
        .unwrap_or(std::time::UNIX_EPOCH);
    let theirs = std::fs::metadata(&paths.stop_marker)
        .and_then(|m| m.modified())
        .is_ok_and(|at| at >= since);
    if !theirs {
        if let Err(e) = stopmarker::write(paths, Marker::for_next(config.stop_grace)) {
            warn!(error = %e, path = %paths.stop_marker.display(), "cannot write the stopping marker");
        }
    }
    match migrations {
        Some(dir) => info!(
            signal,
            dir = %dir.display(),
            "stopped while applying the migrations at open: the one running, if any, is rolled \
             back whole, and none after it runs"
        ),
        None => info!(signal, "stopped while starting"),
    }
    Exit::Stopped { drained: 0 }
}

/// When this process began to start (for [`stopped_while_starting`]).
fn started_at() -> std::time::SystemTime {
    static AT: OnceLock<std::time::SystemTime> = OnceLock::new();
    *AT.get_or_init(std::time::SystemTime::now)
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

/// Applies the operator's `--migrations`, before the sockets appear;
/// returns the schema version and the seq of the last commit (0 when none
/// ran).
fn open_migrations(config: &Config, session: &crate::group::Session) -> Result<(u64, u64), Error> {
    let Some(dir) = &config.migrations else {
        let history = crate::migrations::history(session).map_err(|e| Error::Migrations {
            dir: config.paths.db.clone(),
            message: e.to_string(),
        })?;
        return Ok((history.last().map_or(0, |r| r.version), 0));
    };
    let failed = |message: String| Error::Migrations {
        dir: dir.clone(),
        message,
    };
    let list = scribe_protocol::migration::from_dir(dir).map_err(failed)?;
    if list.is_empty() {
        return Err(failed(
            "the directory holds no migration (NNNN_name.sql)".into(),
        ));
    }
    // Said first: a caller that gives up waiting for the sockets quotes
    // the log's last lines, which then say why they are late.
    tracing::info!(
        dir = %dir.display(),
        migrations = list.len(),
        "applying migrations at open: the sockets appear once they are done"
    );
    let report =
        crate::migrations::apply(session, &list, |_| {}).map_err(|e| failed(e.to_string()))?;
    if !report.applied.is_empty() && config.synchronous == crate::config::Synchronous::Full {
        // The writer commits with synchronous=NORMAL: sync what the
        // migrations wrote before anyone is told the schema is there.
        std::fs::File::open(config.paths.wal())
            .and_then(|f| f.sync_data())
            .map_err(|e| Error::io("syncing the WAL after the migrations", e))?;
    }
    tracing::info!(
        dir = %dir.display(),
        before = report.before,
        after = report.after,
        applied = ?report.applied,
        "migrations at open"
    );
    Ok((report.after, report.seq))
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
