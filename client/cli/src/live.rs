//! Reaching the arbiter that runs, if one does, for the commands that
//! never start one (`status`, `stop`) and for `start`: liveness is the
//! lock, and one that holds it is waited for, or said to be starting.

use std::time::{Duration, Instant};

use scribe_client::{autostart, Connection};
use scribe_protocol::{lockfile, WriteError};

use crate::lifecycle::holder_pid;
use crate::Ctx;

/// How long a command waits for the socket of an arbiter that holds the
/// lock (it puts a removed socket back within a fraction of this).
const SOCKET_BACK: Duration = Duration::from_secs(3);

/// A connection to the live arbiter, if one runs. Liveness is decided by
/// the lock: an arbiter that holds it but whose socket is missing is
/// waited for (it binds the socket again), never reported as absent.
///
/// # Errors
///
/// `Unavailable` when the lock is held but no socket answers in time.
pub async fn live(ctx: &Ctx) -> Result<Option<Connection>, WriteError> {
    live_within(ctx, None).await
}

/// [`live`], waiting up to `ready` (`--ready-timeout`; at least
/// [`SOCKET_BACK`]) for an arbiter that is starting (migrations at open)
/// to answer, and saying that option lets it wait longer.
///
/// # Errors
///
/// As [`live`].
pub async fn live_within(
    ctx: &Ctx,
    ready: Option<Duration>,
) -> Result<Option<Connection>, WriteError> {
    let wait = ready.unwrap_or(SOCKET_BACK).max(SOCKET_BACK);
    let paths = &ctx.paths;
    let began = Instant::now();
    let deadline = began + SOCKET_BACK;
    loop {
        if let Some(stream) = autostart::try_connect(paths).await? {
            match Connection::handshake(stream, paths, &ctx.options).await {
                // An arbiter that is stopping may close the connection
                // before its hello: look again (it may be gone by then).
                Err(WriteError::Unavailable { .. }) if Instant::now() < deadline => {}
                other => return other.map(Some),
            }
        }
        if !lockfile::is_held(paths).unwrap_or(false) {
            return Ok(None);
        }
        // One that says it is starting is waited for as long as `wait`,
        // and said to be starting, not "does not answer".
        // `status` and `stop` say so at once when it does what takes long
        // (migrations at open): `stop` then signals it without waiting.
        let starting = scribe_protocol::starting::starting(paths);
        let long = |s: &scribe_protocol::starting::Starting| {
            ready.is_none() && s.phase != scribe_protocol::starting::phase::OPENING
        };
        if let Some(s) = starting
            .as_ref()
            .filter(|s| Instant::now() >= deadline || long(s))
        {
            if began.elapsed() >= wait || long(s) {
                return Err(still_starting(s, ready.map(|_| began.elapsed())));
            }
        } else if Instant::now() >= deadline {
            let hint = lockfile::socket_hint(paths).map_or(String::new(), |h| format!("; {h}"));
            let who = match holder_pid(ctx) {
                // The lock is on the file; the record beside this name is
                // missing: the file is served under another name.
                0 => format!(
                    "an arbiter holds the lock of {} but does not answer on {}, and {} names \
                     none: is {} another name (a hard link) of a database served under its \
                     own? Use that name",
                    paths.db.display(),
                    paths.socket.display(),
                    paths.lock.display(),
                    paths.db.display()
                ),
                pid => format!(
                    "an arbiter (pid {pid}) holds the lock of {} but does not answer on {}",
                    paths.db.display(),
                    paths.socket.display()
                ),
            };
            return Err(WriteError::Unavailable {
                reason: format!("{who}{hint}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a caller is told of an arbiter still starting: what it does, and,
/// when the caller waited `waited` for it (`start`), that
/// `--ready-timeout` lets it wait longer.
pub(crate) fn still_starting(
    s: &scribe_protocol::starting::Starting,
    waited: Option<Duration>,
) -> WriteError {
    let hint = waited.map_or(String::new(), |w| {
        format!(" (waited {} s: --ready-timeout allows more)", w.as_secs())
    });
    WriteError::Unavailable {
        reason: format!("{}; it serves once that is done{hint}", s.describe()),
    }
}
