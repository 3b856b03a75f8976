//! Starting the arbiter on demand.
//!
//! Try to connect; when nobody answers, spawn `scribed` detached (its own
//! session, stdin closed, output appended to the log beside the database)
//! and poll the socket until it accepts or the readiness deadline passes.
//! A `scribed` that exits 0 lost the start race to another one: keep
//! polling, the winner will answer. One that exits non-zero, or a deadline
//! that passes, ends in `Unavailable` with the reason from its log.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scribe_protocol::sidefile::Like;
use scribe_protocol::{failed_start, lockfile, stopmarker, Paths, WriteError};
use tokio::net::UnixStream;

use crate::options::{Options, ENV_ARBITER_BIN};

mod connect;
mod log;
mod owner;
mod starting;

pub use connect::try_connect;
use connect::{connect, connect_failure, is_impostor};
use log::log_tail;
pub use starting::{wait_starting, Waits};

/// An arbiter that answers, and the pid of the one this call spawned
/// (which may have lost the start race to another).
#[derive(Debug)]
pub struct Started {
    /// Connected to whichever arbiter won.
    pub stream: UnixStream,
    /// The pid of the `scribed` this call spawned.
    pub pid: u32,
}

/// Starts `scribed` for `paths` and waits until its socket accepts.
///
/// # Errors
///
/// `Unavailable` with the reason when it cannot be started or does not
/// become ready before `options.ready_timeout`.
pub async fn start(paths: &Paths, options: &Options) -> Result<Started, WriteError> {
    launch(paths, options, true, Waits::of(options)).await
}

/// Starts `scribed` and waits until its socket accepts, and as `waits`
/// allows while it says it is starting (see [`wait_starting`]); with
/// `respect_marker` false (an explicit `scribe start`) a stopping marker
/// does not hold it back.
///
/// # Errors
///
/// As [`start`].
pub async fn launch(
    paths: &Paths,
    options: &Options,
    respect_marker: bool,
    waits: Waits,
) -> Result<Started, WriteError> {
    let unavailable = |reason: String| WriteError::Unavailable { reason };
    let marker = || {
        respect_marker
            .then(|| stopmarker::read_active(&paths.stop_marker))
            .flatten()
    };
    if let Some(marker) = marker() {
        return Err(unavailable(format!(
            "no arbiter is running for {}: {}",
            paths.db.display(),
            marker.describe()
        )));
    }
    // A start that just failed would fail the same way again.
    let failed = || {
        respect_marker
            .then(|| failed_start::holding_back(paths))
            .flatten()
            .map(|f| held_back(paths, &f))
    };
    if let Some(e) = failed() {
        return Err(e);
    }
    let mut deadline = Instant::now() + options.ready_timeout;
    let (mut child, mut log_start) = spawn(paths, options)?;
    let mut pause = Duration::from_millis(2);
    let mut exited = None;
    loop {
        let connected = match connect(paths).await {
            Ok(c) => c,
            // Ours holds the lock a moment before it replaces another
            // user's stale socket: not ready yet, while it runs.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && exited.is_none() => None,
            // Ours holds the lock (and is recorded) a moment before it
            // binds a name of its own beside one another process took.
            Err(e) if is_impostor(&e) && exited.is_none() => None,
            Err(e) => {
                reap_later(child, exited.is_some());
                return Err(connect_failure(paths, &e));
            }
        };
        if let Some(stream) = connected {
            let pid = child.id();
            reap_later(child, exited.is_some());
            return Ok(Started { stream, pid });
        }
        if exited.is_none() {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => exited = Some(status),
                // Stopped (or signalled) while it started: say so.
                Ok(Some(_)) if marker().is_some() => {
                    return Err(unavailable(format!(
                        "no arbiter is running for {}: {}",
                        paths.db.display(),
                        marker().map(|m| m.describe()).unwrap_or_default()
                    )))
                }
                Ok(Some(status)) => {
                    // A start that failed says why in the lock record (the
                    // log's last lines may be another arbiter's).
                    if let Some(e) = failed() {
                        return Err(e);
                    }
                    // Ours found the socket taken (another database's
                    // arbiter given the same --socket): the hello of the
                    // one answering says whose it is, as it does when it
                    // is asked before ours exits, however soon that is.
                    if let Ok(Some(stream)) = connect::connect_after_ours(paths).await {
                        let pid = child.id();
                        reap_later(child, true);
                        return Ok(Started { stream, pid });
                    }
                    return Err(unavailable(format!(
                        "the arbiter exited ({status}) before it was ready: {}",
                        log_tail(&paths.log, log_start)
                    )));
                }
                Ok(None) | Err(_) => {}
            }
        }
        // Ours lost the start race to an arbiter that has since exited
        // (it was stopping): start again, unless that stop said not to.
        if exited.is_some() && !lockfile::is_held(paths).unwrap_or(true) {
            if let Some(marker) = marker() {
                return Err(unavailable(format!(
                    "no arbiter is running for {}: {}",
                    paths.db.display(),
                    marker.describe()
                )));
            }
            if let Some(e) = failed() {
                return Err(e);
            }
            (child, log_start) = spawn(paths, options)?;
            exited = None;
            continue;
        }
        // An arbiter still starting (ours, or the one ours lost the lock
        // race to: migrations at open) is waited for as a write waits for
        // the writer, not only for the readiness deadline.
        let waited = Instant::now();
        match wait_starting(paths, waits).await {
            Ok(Some(stream)) => {
                let pid = child.id();
                reap_later(child, exited.is_some());
                return Ok(Started { stream, pid });
            }
            Ok(None) => {}
            Err(e) => {
                reap_later(child, exited.is_some());
                return Err(e);
            }
        }
        // Time it spent starting is not held against its readiness: one
        // that failed after it is reported as failing, with its reason.
        deadline += waited.elapsed();
        // Ours found the lock held by an arbiter of this file under
        // another name (a hard link): none will answer here.
        if exited.is_some() && scribe_protocol::names::served_under_another_name(paths) {
            reap_later(child, true);
            return Err(WriteError::Refused {
                statement: None,
                reason: scribe_protocol::names::another_name_message(paths),
            });
        }
        // Ours found the lock held by an arbiter on another socket: it
        // will never answer here, so say where it is now.
        let elsewhere = exited
            .is_some()
            .then(|| lockfile::socket_hint(paths))
            .flatten();
        if let Some(hint) = elsewhere {
            reap_later(child, true);
            return Err(unavailable(format!(
                "no arbiter answered on {}: {hint}",
                paths.socket.display()
            )));
        }
        if Instant::now() >= deadline {
            reap_later(child, exited.is_some());
            return Err(unavailable(format!(
                "no arbiter answered on {} within {}: {} — run `scribed --db {}` in the \
                 foreground with RUST_LOG=debug to see why",
                paths.socket.display(),
                humantime::format_duration(options.ready_timeout),
                log_tail(&paths.log, log_start),
                paths.db.display()
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The error of an auto-start held back by a start that just failed.
fn held_back(paths: &Paths, failed: &failed_start::FailedStart) -> WriteError {
    WriteError::Unavailable {
        reason: format!(
            "no arbiter is running for {}: {}",
            paths.db.display(),
            failed.describe(paths)
        ),
    }
}

/// Spawns `scribed` detached, its output appended to the log; returns the
/// child and where its part of the log begins.
fn spawn(paths: &Paths, options: &Options) -> Result<(std::process::Child, u64), WriteError> {
    let unavailable = |reason: String| WriteError::Unavailable { reason };
    let mut cmd = arbiter_command(options)?;
    let bin = PathBuf::from(cmd.get_program());
    let like = Like::db(&paths.db);
    cmd.arg("--db")
        .arg(&paths.db)
        .arg("--socket")
        .arg(&paths.socket)
        .stdin(Stdio::null());
    let owner = owner::owner_of(&paths.db);
    let (dropped, log_start) = match owner {
        // Root for another user's database: the arbiter's process opens
        // its log itself, as that user.
        Some(owner) => {
            let uid = owner.uid();
            owner::run_as(&mut cmd, owner, &paths.log, like.mode().unwrap_or(0o644))
                .map_err(|e| unavailable(format!("cannot start the arbiter: {e}")))?;
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let start = std::fs::symlink_metadata(&paths.log)
                .ok()
                .filter(std::fs::Metadata::is_file)
                .map_or(0, |m| m.len());
            (Some(uid), start)
        }
        None => {
            let log = match like.append(&paths.log) {
                // Another user's, whom this user may not write after: it
                // is kept under its owner's name, and a new one begun.
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => set_log_aside(paths)
                    .and_then(|()| like.append(&paths.log))
                    .map_err(|_| log_failure(paths, &e))?,
                r => r.map_err(|e| log_failure(paths, &e))?,
            };
            let log_start = log.metadata().map_or(0, |m| m.len());
            let err_log = log
                .try_clone()
                .map_err(|e| unavailable(format!("cannot start the arbiter: {e}")))?;
            cmd.stdout(log).stderr(err_log);
            (None, log_start)
        }
    };
    // SAFETY: setsid is async-signal-safe; it detaches the arbiter from
    // our session so it outlives us and our terminal's signals.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(Into::into));
    }
    let child = cmd.spawn().map_err(|e| match dropped {
        Some(uid) => unavailable(format!(
            "cannot start the arbiter {} as uid {uid}, the database's owner: {e} (its log {} \
             must be that user's to write, a regular file)",
            bin.display(),
            paths.log.display()
        )),
        None => unavailable(format!(
            "cannot start the arbiter {}: {e} (set {ENV_ARBITER_BIN} to the scribed binary)",
            bin.display()
        )),
    })?;
    tracing::debug!(pid = child.id(), bin = %bin.display(), "started arbiter");
    Ok((child, log_start))
}

/// Why the log could not be opened, and what to do.
/// Renames the log, another user's that this one may not append to, to
/// `<log>.uid<N>` (N its owner) in the same directory.
fn set_log_aside(paths: &Paths) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(&paths.log)?;
    if !meta.is_file() || meta.uid() == nix::unistd::geteuid().as_raw() {
        return Err(std::io::ErrorKind::PermissionDenied.into());
    }
    let mut aside = paths.log.clone().into_os_string();
    aside.push(format!(".uid{}", meta.uid()));
    std::fs::rename(&paths.log, aside)
}

fn log_failure(paths: &Paths, e: &std::io::Error) -> WriteError {
    let hint = match std::fs::symlink_metadata(&paths.log) {
        Ok(m) if m.file_type().is_symlink() => {
            "it is a symbolic link, which scribe does not write through: remove it".to_owned()
        }
        Ok(m) => format!(
            "it is uid {}'s, mode {:04o}: make it writable for this user, or remove it",
            m.uid(),
            m.mode() & 0o777
        ),
        Err(_) => match paths.log.parent() {
            Some(dir) if !dir.is_dir() => {
                format!("the directory {} does not exist", dir.display())
            }
            _ => "is the database directory writable?".to_owned(),
        },
    };
    WriteError::Unavailable {
        reason: format!(
            "cannot start the arbiter: cannot write its log {}: {e} ({hint})",
            paths.log.display()
        ),
    }
}

/// Waits for the child in the background so it never lingers as a zombie.
fn reap_later(mut child: std::process::Child, already: bool) {
    if !already {
        std::thread::spawn(move || child.wait());
    }
}

/// The command that runs the arbiter: `SCRIBE_ARBITER_BIN`, else
/// `scribed` beside the current executable, else (in the `scribe` CLI) the
/// CLI's own `arbiter` subcommand, else `scribed` on `PATH`.
///
/// # Errors
///
/// `Unavailable` when none is found.
pub fn arbiter_command(options: &Options) -> Result<Command, WriteError> {
    if let Some(p) = &options.arbiter_bin {
        return Ok(Command::new(p));
    }
    if let Some(p) = std::env::var_os(ENV_ARBITER_BIN).filter(|v| !v.is_empty()) {
        return Ok(Command::new(p));
    }
    let exe = std::env::current_exe().ok();
    if let Some(beside) = exe
        .as_ref()
        .and_then(|exe| exe.parent().map(|d| d.join("scribed")))
        .filter(|p| p.is_file())
    {
        return Ok(Command::new(beside));
    }
    if let (true, Some(exe)) = (options.self_arbiter, exe) {
        let mut c = Command::new(exe);
        // `--`: the rest are scribed's flags, not the CLI's own `--db`.
        c.args(["arbiter", "--"]);
        return Ok(c);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("scribed"))
        .find(|p| p.is_file())
        .map(Command::new)
        .ok_or_else(|| WriteError::Unavailable {
            reason: format!(
                "no arbiter is running and scribed was not found beside this program nor on \
                 PATH; install it or set {ENV_ARBITER_BIN}"
            ),
        })
}
