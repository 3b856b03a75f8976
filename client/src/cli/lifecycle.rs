//! `scribe start`, `scribe stop` and `scribe restart`.

use std::time::{Duration, Instant};

use scribe_protocol::stopmarker::{self, Marker};
use scribe_protocol::{lockfile, StopRequest, WriteError};

use super::{Ctx, Failure};
use crate::{autostart, Connection};

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

/// Starts the arbiter in the background unless one runs. Also turns
/// auto-start back on after `stop --hold` or during a stop's grace period.
///
/// # Errors
///
/// `Unavailable` with the reason when it does not become ready.
pub fn start(ctx: &Ctx) -> Result<(), Failure> {
    let paths = &ctx.paths;
    let (client, ours) = ctx.runtime.block_on(async {
        if let Some(stream) = autostart::try_connect(paths).await? {
            let client = Connection::handshake(stream, &ctx.options).await?;
            if !client.status().await?.stopping {
                return Ok::<_, WriteError>((client, None));
            }
            // It is draining: let it finish, then start a new one.
            drop(client);
            wait_gone(ctx, u32::MAX).await?;
        }
        stopmarker::clear(&paths.stop_marker).map_err(|e| WriteError::Unavailable {
            reason: format!("cannot remove {}: {e}", paths.stop_marker.display()),
        })?;
        let started = autostart::start(paths, &ctx.options).await?;
        let client = Connection::handshake(started.stream, &ctx.options).await?;
        Ok((client, Some(started.pid)))
    })?;
    let pid = client.hello().pid;
    if ours == Some(pid) {
        println!(
            "started scribed (pid {pid}) for {}; log: {}",
            paths.db.display(),
            paths.log.display()
        );
    } else {
        println!("already running (pid {pid}) for {}", paths.db.display());
    }
    Ok(())
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
    let report = ctx.runtime.block_on(async {
        let Some(stream) = autostart::try_connect(paths).await? else {
            return Ok(None);
        };
        let client = Connection::handshake(stream, &ctx.options).await?;
        client.stop(request).await.map(Some)
    })?;
    let Some(report) = report else {
        if args.hold {
            stopmarker::write(&paths.stop_marker, Marker::Hold).map_err(|e| {
                Failure::Local(format!("cannot write {}: {e}", paths.stop_marker.display()))
            })?;
            println!(
                "no arbiter is running for {}; auto-start held until `scribe start`",
                paths.db.display()
            );
        } else {
            println!("no arbiter is running for {}", paths.db.display());
        }
        return Ok(());
    };
    ctx.runtime.block_on(wait_gone(ctx, report.pid))?;
    let then = match stopmarker::read_active(&paths.stop_marker) {
        Some(m) => m.describe().replace("the arbiter was stopped; ", ""),
        None => "auto-start is on".to_owned(),
    };
    println!(
        "stopped scribed (pid {}) in {} ms: drained {} queued write(s); {then}",
        report.pid,
        started.elapsed().as_millis(),
        report.drained
    );
    Ok(())
}

/// Waits until the arbiter (pid `pid`, for messages) has released its lock.
async fn wait_gone(ctx: &Ctx, pid: u32) -> Result<(), WriteError> {
    let deadline = Instant::now() + EXIT_TIMEOUT;
    while lockfile::is_held(&ctx.paths.lock).unwrap_or(false) {
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
    Ok(())
}

/// The state of auto-start, for `status` when no arbiter runs.
pub fn autostart_state(ctx: &Ctx) -> String {
    match stopmarker::read_active(&ctx.paths.stop_marker) {
        Some(m) => m.describe(),
        None if ctx.options.autostart => "auto-start is on".to_owned(),
        None => "auto-start is off (--no-autostart or SCRIBE_AUTOSTART=0)".to_owned(),
    }
}
