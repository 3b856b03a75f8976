//! Waiting for an arbiter that holds the lock but serves nobody yet: it
//! is opening the database or applying its migrations at open (see
//! `scribe_protocol::starting`). A write waits for it as it would wait
//! behind the writer: up to its own wait, then `Busy`. Spawning another
//! arbiter meanwhile would only lose the lock race.

use std::time::{Duration, Instant};

use scribe_protocol::starting::{phase, starting};
use scribe_protocol::{Paths, WriteError};
use tokio::net::UnixStream;

use super::connect::connect;
use crate::options::Options;

/// How long a caller waits for a starting arbiter.
#[derive(Clone, Copy, Debug)]
pub struct Waits {
    /// While it only opens the database: its readiness deadline (or
    /// `busy`, when longer).
    pub ready: Duration,
    /// While it does what holds the writer (migrations at open, waiting
    /// for a previous arbiter): the caller's own wait for the writer.
    pub busy: Duration,
}

impl Waits {
    /// A call's: the readiness deadline, and its own wait for the writer
    /// (`starting_wait`, else the call's deadline).
    pub fn of(options: &Options) -> Waits {
        Waits {
            ready: options.ready_timeout,
            busy: options.starting_wait.unwrap_or(options.call_timeout),
        }
    }

    fn limit(&self, phase: &str) -> Duration {
        if phase == phase::OPENING {
            self.ready.max(self.busy)
        } else {
            self.busy
        }
    }
}

/// Waits for a starting arbiter to accept, as [`Waits`] allows. When none
/// is starting (any more), answers at once: `Ok(None)` unless it accepts
/// now, and the caller goes on as it would have (starts one).
///
/// # Errors
///
/// `Busy`, naming what the arbiter does, when it is still starting past
/// the wait.
pub async fn wait_starting(paths: &Paths, waits: Waits) -> Result<Option<UnixStream>, WriteError> {
    let began = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        // While it starts, the socket at the path is a stale one (maybe
        // another user's, refusing us) or none: any failure means "not
        // yet".
        if let Ok(Some(stream)) = connect(paths).await {
            return Ok(Some(stream));
        }
        let Some(now) = starting(paths) else {
            // Not starting (any more): ready since the try above, or none
            // is starting; a failure is the caller's to meet and explain
            // (one that just took the lock has not written its record).
            return Ok(connect(paths).await.ok().flatten());
        };
        let limit = waits.limit(&now.phase);
        if began.elapsed() >= limit {
            tracing::debug!(pid = now.pid, phase = %now.phase, "gave up waiting for a starting arbiter");
            return Err(now.busy(began.elapsed()));
        }
        tokio::time::sleep(pause.min(limit.saturating_sub(began.elapsed()))).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
