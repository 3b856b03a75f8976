//! The arbiter's start, from the lock taken to the sockets bound: wait
//! for a previous arbiter of the path, open the database, apply the
//! migrations at open, bind. The lock record says which step it is at (see
//! `scribe_protocol::starting`); a stop signal meanwhile ends it cleanly
//! (see `early`).

use std::sync::OnceLock;
use std::time::Duration;

use scribe_protocol::lockfile::InstanceLock;
use scribe_protocol::starting::phase;
use tracing::{info, warn};

use crate::config::Config;
use crate::daemon::Exit;
use crate::error::Error;
use crate::server::Listeners;
use crate::socket::Listener;
use crate::walhold::WalHold;

/// How a start ended.
pub enum Start {
    /// A stop signal came first.
    Stopped(Exit),
    /// Ready to serve.
    Opened(Box<Opened>),
}

/// What a start that succeeded hands to the serving arbiter.
pub struct Opened {
    /// The writer's connection.
    pub session: crate::group::Session,
    /// The seq of the last commit before this start.
    pub seq: u64,
    /// The schema version, and the seq of the migrations' last commit.
    pub schema_version: (u64, u64),
    /// Held while this arbiter may write the WAL.
    pub wal_hold: WalHold,
    /// The runtime the sockets were bound in.
    pub runtime: tokio::runtime::Runtime,
    /// The bound sockets.
    pub listeners: Listeners,
    /// The configuration, with the socket names as bound.
    pub config: Config,
}

/// Starts: every step up to the sockets bound and recorded. `previous`
/// is the lock record of the arbiter before this one.
///
/// # Errors
///
/// Any failure to open the database, apply the migrations at open or
/// bind; each names the path and the cause.
pub fn open(
    config: Config,
    lock: &mut InstanceLock,
    previous: &scribe_protocol::lockfile::LockInfo,
) -> Result<Start, Error> {
    let paths = config.paths.clone();
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
    starting(lock, phase::OPENING);
    // The arbiter of a file that was at this path before a move or a
    // restore may still be draining into the WAL here (see `walhold`).
    let wal = paths.wal();
    if crate::walhold::wait_free(&wal, crate::walhold::WAIT_FOR_PREVIOUS, || {
        starting(lock, phase::PREVIOUS);
    })? {
        starting(lock, phase::OPENING);
        if let Some(signal) = crate::early::received() {
            return Ok(Start::Stopped(stopped_while_starting(
                &config, signal, None,
            )));
        }
        crate::walhold::stopped_meanwhile(&paths)?;
    }
    // Once no arbiter holds the WAL (the previous one gone, however it
    // went: it may have been killed while this one waited).
    crate::walhold::refuse_replaced(&paths, previous.file, previous.wal)?;
    let (session, seq) = crate::db::open_writer(&config)?;
    if let Some(signal) = crate::early::received() {
        return Ok(Start::Stopped(stopped_while_starting(
            &config, signal, None,
        )));
    }
    let wal_hold = crate::walhold::hold(&paths.wal())?;
    if let Some(dir) = &config.migrations {
        starting(lock, &phase::migrating(dir));
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
        return Ok(Start::Stopped(stopped_while_starting(
            &config,
            signal,
            dir.as_deref(),
        )));
    }
    let schema_version = migrated?;
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
    Ok(Start::Opened(Box::new(Opened {
        session,
        seq,
        schema_version,
        wal_hold,
        runtime,
        listeners,
        config,
    })))
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
pub fn started_at() -> std::time::SystemTime {
    static AT: OnceLock<std::time::SystemTime> = OnceLock::new();
    *AT.get_or_init(std::time::SystemTime::now)
}

/// Applies the operator's `--migrations`, before the sockets appear;
/// returns the schema version and the seq of the last commit (0 when none
/// ran).
fn open_migrations(config: &Config, session: &crate::group::Session) -> Result<(u64, u64), Error> {
    let Some(dir) = &config.migrations else {
        let history = crate::migrations::history(session).map_err(|e| Error::Migrations {
            dir: config.paths.db.clone(),
            busy: lock_in_the_way(&e),
            message: e.to_string(),
        })?;
        return Ok((history.last().map_or(0, |r| r.version), 0));
    };
    let failed = |message: String| Error::Migrations {
        dir: dir.clone(),
        message,
        busy: false,
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
        crate::migrations::apply(session, &list, |_| {}).map_err(|e| Error::Migrations {
            dir: dir.clone(),
            busy: lock_in_the_way(&e),
            message: e.to_string(),
        })?;
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

/// Whether `e` is another process's lock held past the busy timeout
/// (SQLITE_BUSY or SQLITE_LOCKED, any extended code): it passes.
fn lock_in_the_way(e: &scribe_protocol::WriteError) -> bool {
    use scribe_protocol::WriteError;
    match e {
        WriteError::Busy { .. } => true,
        WriteError::Sql { code, .. } => matches!(code & 0xff, 5 | 6),
        _ => false,
    }
}
