//! `scribe start` and `scribe stop`.

use std::time::{Duration, Instant};

use scribe_protocol::{lockfile, WriteError};

use super::{Ctx, Failure};
use crate::{autostart, Client};

/// Longest `stop` waits for the arbiter to be gone after it drained.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts the arbiter in the background unless one runs.
///
/// # Errors
///
/// `Unavailable` with the reason when it does not become ready.
pub fn start(ctx: &Ctx) -> Result<(), Failure> {
    let paths = &ctx.paths;
    let (client, ours) = ctx.runtime.block_on(async {
        if let Some(stream) = autostart::try_connect(paths).await? {
            return Ok::<_, WriteError>((Client::handshake(stream, &ctx.options).await?, None));
        }
        let started = autostart::start(paths, &ctx.options).await?;
        let client = Client::handshake(started.stream, &ctx.options).await?;
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
        println!("already running (pid {pid})");
    }
    Ok(())
}

/// Stops the arbiter: it drains its queue, checkpoints and exits; returns
/// once it is gone.
///
/// # Errors
///
/// `Timeout` when it has not exited within [`EXIT_TIMEOUT`].
pub fn stop(ctx: &Ctx) -> Result<(), Failure> {
    let paths = &ctx.paths;
    let report = ctx.runtime.block_on(async {
        let Some(stream) = autostart::try_connect(paths).await? else {
            return Ok(None);
        };
        let client = Client::handshake(stream, &ctx.options).await?;
        client.stop().await.map(Some)
    })?;
    let Some(report) = report else {
        println!("no arbiter is running for {}", paths.db.display());
        return Ok(());
    };
    let deadline = Instant::now() + EXIT_TIMEOUT;
    while lockfile::is_held(&paths.lock).unwrap_or(false) {
        if Instant::now() >= deadline {
            return Err(Failure::Category(WriteError::Timeout {
                message: format!(
                    "the arbiter (pid {}) drained its queue but has not exited within {}",
                    report.pid,
                    humantime::format_duration(EXIT_TIMEOUT)
                ),
            }));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "stopped scribed (pid {}): drained {} queued write(s)",
        report.pid, report.drained
    );
    Ok(())
}
