//! [`Client`]: writes that survive a restarting arbiter.
//!
//! A client keeps one connection (reconnecting, and auto-starting the
//! arbiter, when it breaks) and gives every write an idempotency key, so
//! that retrying a write whose outcome is unknown is safe: the arbiter
//! answers a repeat from its record instead of writing twice.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scribe_protocol::frame::Request;
use scribe_protocol::{Batch, Paths, Receipt, Status, WriteError};
use tokio::sync::Mutex;

use crate::connection::Connection;
use crate::options::Options;
use crate::retry::{self, Backoff, Verdict};

/// The shortest deadline a try is given, even at the very end of
/// `retry_for`.
const MIN_TRY: Duration = Duration::from_millis(50);

/// Counters of what a client did, for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Writes acknowledged.
    pub acknowledged: u64,
    /// Tries beyond the first.
    pub retries: u64,
    /// Acknowledgements that were replays of an earlier try.
    pub replays: u64,
    /// New connections made after the first.
    pub reconnects: u64,
}

#[derive(Debug, Default)]
struct Counters {
    acknowledged: AtomicU64,
    retries: AtomicU64,
    replays: AtomicU64,
    reconnects: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    paths: Paths,
    options: Options,
    /// The live connection and its generation (so that of many tasks that
    /// saw it break, only one replaces it).
    conn: Mutex<(u64, Option<Connection>)>,
    counters: Counters,
}

/// A reconnecting, retrying writer for one database. Cheap to clone;
/// clones share the connection and may write concurrently.
///
/// A client belongs to the process that made it: after `fork()`, the child
/// makes its own (the two would share one socket and read each other's
/// answers). Text that is not valid UTF-8 is read back with U+FFFD.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// Connects (auto-starting the arbiter when allowed).
    ///
    /// # Errors
    ///
    /// `Unavailable` with the reason when no arbiter answers; `Protocol`
    /// on a version mismatch.
    pub async fn connect(paths: &Paths, options: &Options) -> Result<Client, WriteError> {
        let conn = Connection::connect(paths, options).await?;
        Ok(Client {
            inner: Arc::new(Inner {
                paths: paths.clone(),
                options: options.clone(),
                conn: Mutex::new((0, Some(conn))),
                counters: Counters::default(),
            }),
        })
    }

    /// Writes a batch, once. With `options.retry_for` above zero, every
    /// write carries an idempotency key (a random one unless the batch has
    /// its own) and retryable failures are tried again, with capped
    /// exponential backoff and jitter, reconnecting (and auto-starting the
    /// arbiter) as needed, until `retry_for` has passed.
    ///
    /// # Errors
    ///
    /// The last error when it is not retryable or the deadline passed.
    pub async fn write(&self, mut batch: Batch) -> Result<Receipt, WriteError> {
        crate::inside::refuse_inside(self.id(), "a write")?;
        let retry_for = self.inner.options.retry_for;
        // Retried writes carry a key, so a try that did commit is not
        // applied again.
        if !retry_for.is_zero() && batch.key.is_none() {
            batch.key = Some(retry::new_key());
        }
        let start = Instant::now();
        let deadline = retry::deadline_from(start, retry_for);
        let mut backoff = Backoff::default();
        let mut tries = 0u64;
        // A try ended with its outcome unknown (it may have committed).
        let mut unknown = false;
        // Built once: a try sends it by reference (no copy of the batch).
        let request = Request::Write(batch);
        loop {
            tries += 1;
            // Each try fits in what is left of `retry_for` (a single try
            // gets the whole call timeout); the first needs no clock.
            let call_timeout = self.inner.options.call_timeout;
            let now = if tries == 1 { start } else { Instant::now() };
            let this_try = if retry_for.is_zero() {
                call_timeout
            } else {
                call_timeout.min(deadline.saturating_duration_since(now).max(MIN_TRY))
            };
            let (generation, outcome) = match self.connection().await {
                Ok((g, c)) => (g, c.write_request(&request, this_try).await),
                Err(e) => (u64::MAX, Err(e)),
            };
            let error = match outcome {
                Ok(receipt) => {
                    let c = &self.inner.counters;
                    c.acknowledged.fetch_add(1, Relaxed);
                    c.retries.fetch_add(tries - 1, Relaxed);
                    if receipt.replayed && tries > 1 {
                        c.replays.fetch_add(1, Relaxed);
                    }
                    return Ok(receipt);
                }
                Err(e) => e,
            };
            unknown |= matches!(error, WriteError::Timeout { .. });
            let error = if unknown {
                retry::after_unknown(error)
            } else {
                error
            };
            let Verdict::Retry {
                reconnect,
                at_least,
            } = retry::verdict(&error, &self.inner.paths)
            else {
                self.inner.counters.retries.fetch_add(tries - 1, Relaxed);
                return Err(ended(
                    retry::given_up(error, &self.inner.paths),
                    unknown,
                    &request,
                ));
            };
            let pause = backoff.pause(at_least);
            if retry::past(deadline, pause) {
                self.inner.counters.retries.fetch_add(tries - 1, Relaxed);
                return Err(ended(error, unknown, &request));
            }
            if reconnect {
                self.drop_connection(generation).await;
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// The arbiter's counters and settings (no retries).
    ///
    /// # Errors
    ///
    /// `Unavailable` or `Timeout` when it does not answer.
    pub async fn status(&self) -> Result<Status, WriteError> {
        self.on_connection(|c| async move { c.status().await })
            .await
    }

    /// What this client did so far.
    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        ClientStats {
            acknowledged: c.acknowledged.load(Relaxed),
            retries: c.retries.load(Relaxed),
            replays: c.replays.load(Relaxed),
            reconnects: c.reconnects.load(Relaxed),
        }
    }

    /// What tells this client (and its clones) from another.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// The database's paths.
    pub fn paths(&self) -> &Paths {
        &self.inner.paths
    }

    /// The options this client runs with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Forgets the live connection: the next call makes a new one.
    pub(crate) async fn reconnect(&self) {
        let mut guard = self.inner.conn.lock().await;
        guard.1 = None;
    }

    /// The live connection, making one if there is none or it has ended
    /// (a write's retries replace a broken one, but `begin` and `status`
    /// do not retry: they failed on it for ever after a restart).
    pub(crate) async fn connection(&self) -> Result<(u64, Connection), WriteError> {
        let mut guard = self.inner.conn.lock().await;
        if let Some(c) = guard.1.as_ref().filter(|c| !c.is_closed()) {
            return Ok((guard.0, c.clone()));
        }
        let c = Connection::connect(&self.inner.paths, &self.inner.options).await?;
        guard.0 += 1;
        guard.1 = Some(c.clone());
        self.inner.counters.reconnects.fetch_add(1, Relaxed);
        Ok((guard.0, c))
    }

    /// Runs `call` on the live connection, and once more on a new one when
    /// it failed because that connection had ended unseen: an arbiter that
    /// restarted since its last call, before this client's reader noticed
    /// (on a one-thread runtime, until the caller next awaits). For calls
    /// that write nothing alone (`status`, `begin`): a session begun on
    /// a connection ends with it.
    pub(crate) async fn on_connection<T, F, Fut>(&self, call: F) -> Result<T, WriteError>
    where
        F: Fn(Connection) -> Fut,
        Fut: std::future::Future<Output = Result<T, WriteError>>,
    {
        let (generation, c) = self.connection().await?;
        match call(c.clone()).await {
            // Lost, or never read by an arbiter that stopped: once more on
            // a new connection (to the next arbiter).
            Err(WriteError::Unavailable { .. } | WriteError::ShuttingDown) if c.is_closed() => {
                self.drop_connection(generation).await;
                call(self.connection().await?.1).await
            }
            r => r,
        }
    }

    /// Forgets the connection of `generation` (if it is still the live one).
    pub(crate) async fn drop_connection(&self, generation: u64) {
        let mut guard = self.inner.conn.lock().await;
        if guard.0 == generation {
            guard.1 = None;
        }
    }
}

/// The error a write ends in: after a try whose outcome is unknown, the
/// last try's failure does not tell it (see [`retry::still_unknown`]).
fn ended(error: WriteError, unknown: bool, request: &Request) -> WriteError {
    if !unknown {
        return error;
    }
    let key = match request {
        Request::Write(batch) => batch.key.as_deref(),
        _ => None,
    };
    retry::still_unknown(error, key)
}
