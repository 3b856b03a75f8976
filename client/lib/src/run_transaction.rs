//! [`Client::transaction`]: runs a closure in a write session and commits
//! it, running the whole of it again when the session ended before its
//! commit and a new one can succeed; a commit whose answer was lost is
//! asked again by its key, never run twice.

use std::future::Future;
use std::time::{Duration, Instant};

use scribe_protocol::frame::{Answer, Request};
use scribe_protocol::{BeginRequest, Receipt, WriteError};

use crate::client::Client;
use crate::connection::unexpected;
use crate::retry::{self, Backoff};
use crate::transaction::Transaction;

/// After an attempt of a whole transaction failed with `error`: how long
/// to pause (at least what the arbiter asked) and whether to reconnect
/// first (an expired session's connection is fine), or `None` to give up
/// with the error: it cannot succeed by running again, the arbiter was
/// stopped on purpose, or the pause would pass `deadline`.
pub(crate) fn next_attempt(
    error: &WriteError,
    backoff: &mut Backoff,
    deadline: Instant,
    paths: &scribe_protocol::Paths,
) -> Option<(Duration, bool)> {
    if !run_again(error) {
        return None;
    }
    let at_least = match retry::verdict(error, paths) {
        retry::Verdict::Retry { at_least, .. } => at_least,
        // An expired session is run again as a whole.
        retry::Verdict::GiveUp if matches!(error, WriteError::Expired { .. }) => Duration::ZERO,
        retry::Verdict::GiveUp => return None,
    };
    let pause = backoff.pause(at_least);
    (!retry::past(deadline, pause)).then_some((pause, !matches!(error, WriteError::Expired { .. })))
}

/// How an attempt at a transaction failed.
pub(crate) enum Failed {
    /// Its session or its commit failed: running it again may pass.
    Session(WriteError),
    /// Its function failed with an error its session did not give (another
    /// client's, its own): returned as it is. It was run again for as long
    /// as `retry_for` when that error was `Unavailable` or `Overloaded`.
    Own(WriteError),
}

impl From<WriteError> for Failed {
    fn from(e: WriteError) -> Failed {
        Failed::Session(e)
    }
}

impl Failed {
    /// The failure of a function that returned `e` in `tx`.
    pub(crate) fn of_function(e: WriteError, tx: &Transaction) -> Failed {
        if tx.met_an_end() {
            Failed::Session(e)
        } else {
            Failed::Own(e)
        }
    }
}

/// Whether a transaction that failed with `e` may be run again as a whole:
/// nothing of it was committed, and trying again can succeed.
pub(crate) fn run_again(e: &WriteError) -> bool {
    matches!(
        e,
        WriteError::Expired { .. }
            | WriteError::Unavailable { .. }
            | WriteError::Overloaded { .. }
            | WriteError::ShuttingDown
    )
}

impl Client {
    /// Begins a write session on this client's connection.
    ///
    /// # Errors
    ///
    /// As [`crate::Connection::begin`].
    pub async fn begin(&self) -> Result<Transaction, WriteError> {
        self.begin_with(BeginRequest::default()).await
    }

    /// Begins a write session with `request`'s lease and limit on the
    /// wait for the writer (`wait_ms`: past it, `WriteError::Busy`).
    ///
    /// # Errors
    ///
    /// As [`crate::Connection::begin`].
    pub async fn begin_with(&self, request: BeginRequest) -> Result<Transaction, WriteError> {
        crate::inside::refuse_inside(self.id(), "a begin")?;
        self.on_connection(|c| {
            let request = request.clone();
            async move { c.begin(request).await }
        })
        .await
    }

    /// A write session that begins with its first call (see
    /// [`Transaction`]): what [`Client::transaction`] runs `f` in.
    pub(crate) async fn lazy_transaction(&self) -> Result<Transaction, WriteError> {
        Ok(self.connection().await?.1.begin_lazily())
    }

    /// Runs `f` in a write session and commits it. When the session ends
    /// before its commit (its lease lapsed, the arbiter restarted, the
    /// queue was full), `f` runs again in a new one, until
    /// `Options::retry_for` has passed; an error of `f` itself (one its
    /// session did not give) rolls the session back and is returned. A
    /// write, begin, migration or transaction of this same client inside
    /// `f` is refused (`Refused`): it would wait for the writer `f`'s
    /// session holds. The commit carries a key, so a
    /// commit whose answer was lost is asked again, never run twice.
    ///
    /// ```no_run
    /// # async fn claim(client: &scribe_client::Client) -> Result<(), scribe_client::Error> {
    /// use scribe_protocol::{Params, Value};
    /// client.transaction(|tx| async move {
    ///     let ready = tx.execute("SELECT id FROM tasks WHERE status = 'ready' LIMIT 1", Params::None).await?;
    ///     if let Some(id) = ready.rows.first().map(|r| r[0].clone()) {
    ///         tx.execute("UPDATE tasks SET status = 'running' WHERE id = ?1",
    ///                    Params::Positional(vec![id])).await?;
    ///     }
    ///     Ok(())
    /// }).await
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The error of `f` or of the commit when it cannot be run again, or
    /// the last error once `retry_for` has passed.
    pub async fn transaction<T, F, Fut>(&self, mut f: F) -> Result<T, WriteError>
    where
        F: FnMut(Transaction) -> Fut,
        Fut: Future<Output = Result<T, WriteError>>,
    {
        crate::inside::refuse_inside(self.id(), "a transaction")?;
        let deadline = retry::deadline(self.options().retry_for);
        let mut backoff = Backoff::default();
        loop {
            let error = match self.attempt(&mut f, deadline).await {
                Ok(v) => return Ok(v),
                Err(Failed::Own(e)) => return Err(e),
                Err(Failed::Session(e)) => e,
            };
            let Some((pause, reconnect)) =
                next_attempt(&error, &mut backoff, deadline, self.paths())
            else {
                return Err(retry::given_up(error, self.paths()));
            };
            if reconnect {
                self.reconnect().await;
            }
            tokio::time::sleep(pause).await;
        }
    }

    async fn attempt<T, F, Fut>(&self, f: &mut F, deadline: Instant) -> Result<T, Failed>
    where
        F: FnMut(Transaction) -> Fut,
        Fut: Future<Output = Result<T, WriteError>>,
    {
        let tx = self.lazy_transaction().await?;
        let value = match crate::inside::running(self.id(), f(tx.clone())).await {
            Ok(v) => v,
            Err(e) => {
                let failed = Failed::of_function(e, &tx);
                let _ = tx.rollback().await;
                return Err(failed);
            }
        };
        let key = retry::new_key();
        match tx.commit_with_key(Some(key.clone())).await {
            Ok(_) => Ok(value),
            Err(WriteError::Timeout { .. }) => {
                Ok(self.ask_again(&key, deadline).await.map(|_| value)?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A commit's outcome is unknown: asks for it by key on a new
    /// connection until the arbiter answers (the receipt, or `Expired`:
    /// it never committed).
    pub(crate) async fn ask_again(
        &self,
        key: &str,
        deadline: Instant,
    ) -> Result<Receipt, WriteError> {
        let mut backoff = Backoff::default();
        loop {
            self.reconnect().await;
            let asked = match self.connection().await {
                Ok((_, c)) => {
                    let request = Request::Commit {
                        open_on_constraint: false,
                        session: 0,
                        key: Some(key.to_owned()),
                    };
                    match c.call(&request, c.options().call_timeout).await {
                        Ok(Answer::Receipt(r)) => Ok(r),
                        Ok(other) => Err(unexpected("commit", &other)),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            match asked {
                Err(e) if retry::is_transient(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(backoff.pause(Duration::ZERO)).await;
                }
                // Still unknown (it was reported as the last try's
                // `Unavailable`, which runs a transaction again, for
                // commits that had happened).
                Err(e) => return Err(retry::still_unknown(e, Some(key))),
                ok => return ok,
            }
        }
    }
}
