//! `scribe start`, `scribe stop` and `scribe restart`.

use std::time::{Duration, Instant};

use scribe_protocol::stopmarker::{self, Marker};
use scribe_protocol::{failed_start, lockfile, StopRequest, WriteError};

use super::{Ctx, Failure};
pub use crate::live::{live, live_within};
use scribe_client::{autostart, Connection};
use scribe_protocol::procstate::{alive, stopped};

/// Longest `stop` waits for the arbiter to be gone after it drained.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// `scribe stop` arguments.
#[derive(Debug, Default, clap::Args)]
pub struct StopArgs {
    /// Keep auto-start off until the next `scribe start`.
    #[arg(long)]
    pub hold: bool,
    /// How long auto-start stays off after the stop (default 30s).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DUR")]
    pub grace: Option<Duration>,
}

impl StopArgs {
    /// The marker this stop leaves: held, or for its grace period.
    fn marker(&self) -> Marker {
        if self.hold {
            Marker::Hold
        } else {
            Marker::for_next(self.grace.unwrap_or(stopmarker::STOP_GRACE))
        }
    }
}

/// `scribe start` arguments.
#[derive(Debug, Default, clap::Args)]
pub struct StartArgs {
    /// Start as an auto-start does (other languages' clients run this): a
    /// stop in force (`stop --hold`, a stop's grace) is respected and
    /// reported (`Unavailable`), never cleared.
    #[arg(long, hide = true)]
    pub auto: bool,
    /// With `--auto`: how long to wait for an arbiter that holds the writer
    /// while it starts (migrations at open) — the caller's own wait for
    /// the writer (a drop-in's `timeout`); default `--timeout`.
    #[arg(long, hide = true, value_parser = humantime::parse_duration, value_name = "DUR")]
    pub starting_wait: Option<Duration>,
}

/// Starts the arbiter in the background unless one runs. Also turns
/// auto-start back on after `stop --hold` or during a stop's grace period
/// (not with `--auto`).
///
/// # Errors
///
/// `Unavailable` with the reason when it does not become ready, or with
/// `--auto` when a stop is in force.
pub fn start(ctx: &Ctx, args: &StartArgs) -> Result<(), Failure> {
    let paths = &ctx.paths;
    let waits = start_waits(ctx, args);
    let (client, ours) = ctx.runtime.block_on(async {
        // An auto-start (other languages' clients) waits for one already
        // starting as their write would, and is told busy past that.
        if args.auto {
            if let Some(stream) = autostart::wait_starting(paths, waits).await? {
                let client = Connection::handshake(stream, paths, &ctx.options).await?;
                return Ok((client, None));
            }
        }
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            // One that runs and is not stopping is the answer; one that
            // is stopping (or closes on us while it stops) is waited out.
            while let Some(client) = live_within(ctx, Some(ctx.options.ready_timeout)).await? {
                let pid = client.hello().pid;
                match client.status().await {
                    Ok(s) if !s.stopping => return Ok::<_, WriteError>((client, None)),
                    Ok(_) | Err(WriteError::Unavailable { .. } | WriteError::ShuttingDown) => {
                        drop(client);
                        wait_gone(ctx, pid, Answering::Waits).await?;
                    }
                    Err(e) => return Err(e),
                }
            }
            // A stop in progress may have removed its socket already:
            // wait for it to be gone rather than race it. The holder may
            // instead be starting (another `start` launched it after we
            // looked): once it answers, look again.
            if !wait_gone(ctx, holder_pid(ctx), Answering::Ends).await? {
                continue;
            }
            // An auto-start checks the marker only now, after waiting out a
            // stopping arbiter: a `stop --hold` made meanwhile stays in force.
            if !args.auto {
                stopmarker::clear(&paths.stop_marker).map_err(|e| WriteError::Unavailable {
                    reason: format!("cannot remove {}: {e}", paths.stop_marker.display()),
                })?;
            }
            let started = match autostart::launch(paths, &ctx.options, args.auto, waits).await {
                // Still starting past --ready-timeout: said as for one
                // found starting (exit 10), not as a write that was busy.
                Err(WriteError::Busy { .. }) if !args.auto => {
                    return Err(match scribe_protocol::starting::starting(paths) {
                        Some(s) => crate::live::still_starting(&s, Some(ctx.options.ready_timeout)),
                        None => WriteError::Unavailable {
                            reason: "the arbiter did not become ready in time".into(),
                        },
                    })
                }
                other => other?,
            };
            match Connection::handshake(started.stream, paths, &ctx.options).await {
                Ok(client) => return Ok((client, Some(started.pid))),
                // Somebody stopped it as it came up: start again.
                Err(WriteError::Unavailable { .. }) if Instant::now() < deadline => {}
                Err(e) => return Err(e),
            }
        }
    })?;
    let pid = client.hello().pid;
    if ctx.json {
        let said = serde_json::json!({
            "started": ours == Some(pid),
            "pid": pid,
            "db": paths.db.display().to_string(),
            "log": paths.log.display().to_string(),
        });
        outln!("{said}");
    } else if ours == Some(pid) {
        outln!(
            "started scribed (pid {pid}) for {}; log: {}",
            paths.db.display(),
            paths.log.display()
        );
    } else {
        outln!("already running (pid {pid}) for {}", paths.db.display());
    }
    Ok(())
}

/// How `start` waits for an arbiter that is starting: up to
/// --ready-timeout; an auto-start (`--auto`, other languages' clients) as
/// their write would, up to `--starting-wait` (else --timeout) for what
/// holds the writer (migrations at open).
fn start_waits(ctx: &Ctx, args: &StartArgs) -> autostart::Waits {
    if args.auto {
        autostart::Waits {
            busy: args.starting_wait.unwrap_or(ctx.options.call_timeout),
            ..autostart::Waits::of(&ctx.options)
        }
    } else {
        autostart::Waits {
            ready: ctx.options.ready_timeout,
            busy: ctx.options.ready_timeout,
        }
    }
}

/// Stops the arbiter: it refuses new writes, drains its queue, checkpoints
/// and exits; returns once it is gone.
///
/// # Errors
///
/// `Timeout` when it has not exited within [`EXIT_TIMEOUT`].
pub fn stop(ctx: &Ctx, args: &StopArgs) -> Result<(), Failure> {
    let paths = &ctx.paths;
    let request = StopRequest {
        hold: args.hold,
        grace_ms: args.grace.map(|g| g.as_millis() as u64),
    };
    let started = Instant::now();
    let mut signalled = false;
    // The stop was asked, and its drain outlasted this call's timeout.
    let mut unreported = false;
    let report = ctx.runtime.block_on(async {
        match live(ctx).await {
            Ok(Some(client)) => {
                let pid = client.hello().pid;
                match client.stop(request).await {
                    // Another stop got there first and it is closing.
                    Err(WriteError::Unavailable { .. } | WriteError::ShuttingDown) => {
                        Ok(Some(scribe_protocol::StopReport { drained: 0, pid }))
                    }
                    // It drains past `--timeout` (an open write session
                    // holds it up to its lease): wait for it to be gone,
                    // as for any stop.
                    Err(WriteError::Timeout { .. }) => {
                        unreported = true;
                        Ok(Some(scribe_protocol::StopReport { drained: 0, pid }))
                    }
                    other => other.map(Some),
                }
            }
            Ok(None) => Ok(None),
            // The lock is held but nobody answers: the same as SIGTERM.
            Err(e) => match lockfile::read_info(&paths.lock).pid {
                Some(pid) if lockfile::is_held(paths).unwrap_or(false) => {
                    // Its hold or grace first: one that is starting keeps a
                    // marker written since it started, rather than write
                    // its own grace over it for a moment.
                    // (One that cannot be written is met again, and
                    // reported, once it is gone.)
                    if args.hold || args.grace.is_some() {
                        let _ = leave_marker(paths, args.marker());
                    }
                    terminate(pid, paths)?;
                    signalled = true;
                    Ok(Some(scribe_protocol::StopReport { drained: 0, pid }))
                }
                _ => Err(e),
            },
        }
    })?;
    let Some(report) = report else {
        if args.hold {
            leave_marker(paths, Marker::Hold)?;
        }
        if ctx.json {
            let said = serde_json::json!({"stopped": false, "running": false, "held": args.hold});
            outln!("{said}");
        } else if args.hold {
            outln!(
                "no arbiter is running for {}; auto-start held until `scribe start`",
                paths.db.display()
            );
        } else {
            outln!("no arbiter is running for {}", paths.db.display());
        }
        return Ok(());
    };
    ctx.runtime
        .block_on(wait_gone(ctx, report.pid, Answering::Waits))?;
    // One the arbiter wrote itself (with its own --stop-grace) stands,
    // unless this stop holds or names its own grace.
    if signalled
        && (args.hold
            || args.grace.is_some()
            || stopmarker::read_active(&paths.stop_marker).is_none())
    {
        // The marker a stop leaves, written once the signalled arbiter is
        // gone (after any it wrote itself): one that had not set up its
        // signal handlers yet (it applies migrations at open) dies of the
        // signal without writing one, and the next write would start it
        // again.
        leave_marker(paths, args.marker())?;
    }
    let then = match stopmarker::read_active(&paths.stop_marker) {
        Some(m) => m.describe().replace("the arbiter was stopped; ", ""),
        // A stop with a grace leaves a marker (expired at once with the
        // arbiter's own --stop-grace 0): no file means it could not be
        // written (a full disk, a read-only directory), and the stop does
        // not stay in force; say so rather than only "auto-start is on".
        None if (args.hold || args.grace != Some(Duration::ZERO))
            && !paths.stop_marker.exists() =>
        {
            match leave_marker(paths, args.marker()) {
                Ok(()) => match stopmarker::read_active(&paths.stop_marker) {
                    Some(m) => m.describe().replace("the arbiter was stopped; ", ""),
                    None => "auto-start is on".to_owned(),
                },
                Err(Failure::Local(why)) => format!(
                    "auto-start is on, as the stop could not be recorded ({why}): the next \
                     write starts the arbiter again"
                ),
                Err(e) => return Err(e),
            }
        }
        None => "auto-start is on".to_owned(),
    };
    if ctx.json {
        let said = serde_json::json!({
            "stopped": true,
            "pid": report.pid,
            "ms": started.elapsed().as_millis() as u64,
            "drained": (!unreported).then_some(report.drained),
            "then": then,
        });
        outln!("{said}");
        return Ok(());
    }
    let drained = if unreported {
        "its drain outlasted --timeout, so what it drained was not reported".to_owned()
    } else {
        format!("drained {} queued write(s)", report.drained)
    };
    outln!(
        "stopped scribed (pid {}) in {} ms: {drained}; {then}",
        report.pid,
        started.elapsed().as_millis(),
    );
    Ok(())
}

/// The pid recorded by the lock holder (0 when unknown).
pub(crate) fn holder_pid(ctx: &Ctx) -> u32 {
    lockfile::read_info(&ctx.paths.lock).pid.unwrap_or(0)
}

/// Stops an arbiter that cannot be reached on its socket: SIGTERM, which
/// it treats as `stop` (the caller writes the stopping marker once it is
/// gone).
fn terminate(pid: u32, paths: &scribe_protocol::Paths) -> Result<(), WriteError> {
    use nix::sys::signal::{kill, Signal};
    // The pid is the lock record's, a file another user may have left: a
    // process that does not hold the database open is not its arbiter
    // (the pid may have been reused since).
    if holds_open(pid, &paths.db) == Some(false) {
        return Err(WriteError::Unavailable {
            reason: format!(
                "the arbiter holds the lock but does not answer, and pid {pid} (from {}) does \
                 not have {} open: not signalled",
                paths.lock.display(),
                paths.db.display()
            ),
        });
    }
    kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGTERM).map_err(|e| {
        WriteError::Unavailable {
            reason: format!("cannot signal the arbiter (pid {pid}): {e}"),
        }
    })
}

/// Writes the stopping marker a stop leaves.
fn leave_marker(paths: &scribe_protocol::Paths, marker: Marker) -> Result<(), Failure> {
    stopmarker::write(paths, marker)
        .map_err(|e| Failure::Local(format!("cannot write {}: {e}", paths.stop_marker.display())))
}

/// Whether process `pid` has `db` open (`None` where `/proc` does not
/// say: another system, or another user's process). By the links' text
/// alone: a `stat` through them could hang on a file system the process
/// serves itself (FUSE).
fn holds_open(pid: u32, db: &std::path::Path) -> Option<bool> {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        fds.flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == db)),
    )
}

/// What an arbiter answering on the socket means to [`wait_gone`].
#[derive(Clone, Copy, PartialEq)]
enum Answering {
    /// Nothing: the one waited for is known to be stopping.
    Waits,
    /// The wait ends: the holder may have been starting, not stopping.
    Ends,
}

/// Waits until the arbiter (pid `pid`, for messages) has released its
/// lock; true then, false when the wait ended because an arbiter answers
/// on the socket (with [`Answering::Ends`]).
///
/// Another arbiter may take the lock the moment this one lets go of it,
/// so "gone" is that process having exited (or the lock being free), not
/// the lock alone. `pid` 0 means "whoever holds it now".
async fn wait_gone(ctx: &Ctx, pid: u32, answering: Answering) -> Result<bool, WriteError> {
    let deadline = Instant::now() + EXIT_TIMEOUT;
    let mut frozen_since = None;
    while lockfile::is_held(&ctx.paths).unwrap_or(false) && (pid == 0 || alive(pid)) {
        if answering == Answering::Ends && autostart::try_connect(&ctx.paths).await?.is_some() {
            return Ok(false);
        }
        // Stopped (SIGSTOP, a debugger) for a second: it cannot finish.
        frozen_since =
            (pid != 0 && stopped(pid)).then(|| frozen_since.unwrap_or_else(Instant::now));
        if frozen_since.is_some_and(|t: Instant| t.elapsed() >= Duration::from_secs(1)) {
            return Err(WriteError::Timeout {
                message: format!(
                    "the arbiter (pid {pid}) is stopped (SIGSTOP, or a debugger holds it): it \
                     cannot finish its stop until it is continued (`kill -CONT {pid}`)"
                ),
            });
        }
        if Instant::now() >= deadline {
            return Err(WriteError::Timeout {
                message: format!(
                    "the arbiter (pid {pid}) is stopping but has not exited within {}",
                    humantime::format_duration(EXIT_TIMEOUT)
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(true)
}

/// The state of auto-start, for `status` when no arbiter runs.
pub fn autostart_state(ctx: &Ctx) -> String {
    if let Some(m) = stopmarker::read_active(&ctx.paths.stop_marker) {
        return match stopmarker::read_why(&ctx.paths.stop_marker) {
            Some(why) => format!("{why}; {}", m.describe()),
            None => m.describe(),
        };
    }
    let last = failed_start::last(&ctx.paths);
    let state = match (ctx.options.autostart, &last) {
        (true, Some(f)) if f.ago < failed_start::HOLD => return f.describe(&ctx.paths),
        (true, _) => "auto-start is on",
        (false, _) => "auto-start is off (--no-autostart or SCRIBE_AUTOSTART=0)",
    };
    match last {
        Some(f) => format!(
            "{state}; its last start failed {} s ago: {}",
            f.ago.as_secs(),
            f.why
        ),
        None => state.to_owned(),
    }
}
