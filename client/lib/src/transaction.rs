//! Write sessions (interactive transactions): [`Transaction`], and
//! [`Client::transaction`], which runs a closure in one and runs it again
//! as a whole when the session ends before its commit.
//!
//! A session holds the arbiter's writer from its begin to its end: batches
//! are the fast path, sessions are for read-decide-write steps that need
//! code in between.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use scribe_protocol::frame::{Answer, Request};
use scribe_protocol::{
    BeginRequest, Lease, Params, Receipt, Statement, StatementResult, WriteError, LATEST_SESSION,
};

use crate::client::Client;
use crate::connection::{unexpected, Connection};
use crate::retry::{self, Backoff};

/// A write session on one connection. Cheap to clone; every call goes to
/// the same session, in order.
///
/// One made by [`Client::transaction`] begins with its first call: the
/// begin and that call go out together (`LATEST_SESSION` names the session
/// just begun), which saves a round trip while holding the writer.
#[derive(Clone, Debug)]
pub struct Transaction {
    conn: Connection,
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    /// The session's id and lease, once begun.
    began: OnceLock<(u64, Lease)>,
    /// Held by the call that begins the session: a clone's call waits.
    beginning: tokio::sync::Mutex<()>,
    /// The statement error with which SQLite rolled the session back, if
    /// it did: every later call answers it again (not `Expired`, which
    /// would have the transaction run again only to meet it again).
    rolled_back: OnceLock<WriteError>,
}

impl Connection {
    /// Begins a write session; returns once the writer serves it (it
    /// waits in the queue like a batch).
    ///
    /// # Errors
    ///
    /// `Overloaded`, `ShuttingDown`, or the connection's errors.
    pub async fn begin(&self, request: BeginRequest) -> Result<Transaction, WriteError> {
        let timeout = self.options().call_timeout;
        match self.call(&Request::Begin(request), timeout).await? {
            Answer::Began(b) => {
                let tx = self.begin_lazily();
                let _ = tx.state.began.set((b.session, b.lease));
                Ok(tx)
            }
            other => Err(unexpected("begin", &other)),
        }
    }

    /// A write session that begins with its first call (nothing is sent
    /// yet).
    pub(crate) fn begin_lazily(&self) -> Transaction {
        Transaction {
            conn: self.clone(),
            state: Arc::new(State {
                began: OnceLock::new(),
                beginning: tokio::sync::Mutex::new(()),
                rolled_back: OnceLock::new(),
            }),
        }
    }
}

impl Transaction {
    /// The lease in force (the idle limit between calls, the total);
    /// `None` while a session that begins with its first call has had
    /// none.
    pub fn lease(&self) -> Option<Lease> {
        self.state.began.get().map(|&(_, lease)| lease)
    }

    /// Sends `make(id)` in the session; a session not begun yet is begun
    /// by the same write to the socket (`make(LATEST_SESSION)` right
    /// behind the begin).
    async fn call(
        &self,
        make: impl FnOnce(u64) -> Request,
        timeout: Duration,
    ) -> Result<Answer, WriteError> {
        if let Some(e) = self.state.rolled_back.get() {
            return Err(e.clone());
        }
        let answer = self.send(make, timeout).await;
        if let Err(e @ WriteError::RolledBack { .. }) = &answer {
            let _ = self.state.rolled_back.set(e.clone());
        }
        answer
    }

    /// [`Transaction::call`], sent.
    async fn send(
        &self,
        make: impl FnOnce(u64) -> Request,
        timeout: Duration,
    ) -> Result<Answer, WriteError> {
        if let Some(&(id, _)) = self.state.began.get() {
            return self.conn.call(&make(id), timeout).await;
        }
        let _beginning = self.state.beginning.lock().await;
        if let Some(&(id, _)) = self.state.began.get() {
            return self.conn.call(&make(id), timeout).await;
        }
        let begin = Request::Begin(BeginRequest::default());
        let request = make(LATEST_SESSION);
        // One write, nothing of another caller's between them: the call
        // names the session this begin makes.
        let (began, answer) = self
            .conn
            .call_pair(
                (&begin, self.conn.options().call_timeout),
                (&request, timeout),
            )
            .await;
        match began? {
            Answer::Began(b) => {
                let _ = self.state.began.set((b.session, b.lease));
            }
            other => return Err(unexpected("begin", &other)),
        }
        answer
    }

    /// The longest a statement may wait for its answer: the lease's
    /// total, or before the begin's answer (which may wait in the queue
    /// too) as long again as a call plus 30 s.
    fn exec_timeout(&self) -> Duration {
        let call = self.conn.options().call_timeout;
        match self.lease() {
            Some(lease) => Duration::from_millis(lease.total_ms) + call,
            None => Duration::from_secs(30) + call * 2,
        }
    }

    /// Runs one statement in the session: its rows (a query or a
    /// `RETURNING` clause), rows changed, last insert rowid.
    ///
    /// # Errors
    ///
    /// The statement's error (the session goes on); `RolledBack` when
    /// SQLite rolled the whole transaction back with the statement's error
    /// (the session is over, and later calls answer the same); `Expired`
    /// when the session has ended (run the whole transaction again).
    pub async fn exec(&self, statement: Statement) -> Result<StatementResult, WriteError> {
        let make = |session| Request::Exec { session, statement };
        match self.call(make, self.exec_timeout()).await? {
            Answer::Executed(r) => Ok(r),
            other => Err(unexpected("exec", &other)),
        }
    }

    /// Runs `statements` in the session, in order, in one round trip (an
    /// `executemany`): the rows they changed in all and the last one's
    /// rowid (no rows are returned). The first that fails ends the call
    /// with its error; those before it stay done in the session, those
    /// after it do not run.
    ///
    /// # Errors
    ///
    /// As [`Transaction::exec`].
    pub async fn exec_many(
        &self,
        statements: Vec<Statement>,
    ) -> Result<StatementResult, WriteError> {
        let make = |session| Request::ExecMany {
            session,
            statements,
        };
        match self.call(make, self.exec_timeout()).await? {
            Answer::Executed(r) => Ok(r),
            other => Err(unexpected("exec_many", &other)),
        }
    }

    /// Runs `sql` with `params` (see [`Transaction::exec`]).
    ///
    /// # Errors
    ///
    /// As [`Transaction::exec`].
    pub async fn execute(&self, sql: &str, params: Params) -> Result<StatementResult, WriteError> {
        let mut st = Statement::new(sql);
        st.params = params;
        self.exec(st).await
    }

    /// Commits; with `key`, the commit is recorded under it, and a caller
    /// whose answer was lost can ask again on a new connection.
    ///
    /// # Errors
    ///
    /// `Conflict` for a used key, a deferred constraint's `Sql` error (the
    /// session is then rolled back); `Timeout` when the outcome is unknown.
    pub async fn commit_with_key(self, key: Option<String>) -> Result<Receipt, WriteError> {
        let timeout = self.conn.options().call_timeout;
        let make = |session| Request::Commit { session, key };
        match self.call(make, timeout).await? {
            Answer::Receipt(r) => Ok(r),
            other => Err(unexpected("commit", &other)),
        }
    }

    /// Commits (see [`Transaction::commit_with_key`]).
    ///
    /// # Errors
    ///
    /// As [`Transaction::commit_with_key`].
    pub async fn commit(self) -> Result<Receipt, WriteError> {
        self.commit_with_key(None).await
    }

    /// Rolls back.
    ///
    /// # Errors
    ///
    /// `Expired` when the session had already ended (nothing was written
    /// either way).
    pub async fn rollback(self) -> Result<(), WriteError> {
        let timeout = self.conn.options().call_timeout;
        if self.state.rolled_back.get().is_some() {
            return Ok(()); // SQLite rolled it back already
        }
        if self.state.began.get().is_none() {
            // Never begun (a clone's first call may be under way: wait
            // for it): nothing to undo.
            let _beginning = self.state.beginning.lock().await;
            if self.state.began.get().is_none() {
                return Ok(());
            }
        }
        let make = |session| Request::Rollback { session };
        match self.call(make, timeout).await? {
            Answer::RolledBack => Ok(()),
            other => Err(unexpected("rollback", &other)),
        }
    }
}

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

/// Whether a transaction that failed with `e` may be run again as a whole:
/// nothing of it was committed, and trying again can succeed.
fn run_again(e: &WriteError) -> bool {
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
    /// As [`Connection::begin`].
    pub async fn begin(&self) -> Result<Transaction, WriteError> {
        self.connection()
            .await?
            .1
            .begin(BeginRequest::default())
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
    /// `Options::retry_for` has passed; an error of `f` itself rolls the
    /// session back and is returned. The commit carries a key, so a
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
        let deadline = retry::deadline(self.options().retry_for);
        let mut backoff = Backoff::default();
        loop {
            let error = match self.attempt(&mut f, deadline).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
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

    async fn attempt<T, F, Fut>(&self, f: &mut F, deadline: Instant) -> Result<T, WriteError>
    where
        F: FnMut(Transaction) -> Fut,
        Fut: Future<Output = Result<T, WriteError>>,
    {
        let tx = self.lazy_transaction().await?;
        let value = match f(tx.clone()).await {
            Ok(v) => v,
            Err(e) => {
                let _ = tx.rollback().await;
                return Err(e);
            }
        };
        let key = retry::new_key();
        match tx.commit_with_key(Some(key.clone())).await {
            Ok(_) => Ok(value),
            Err(WriteError::Timeout { .. }) => self.ask_again(&key, deadline).await.map(|_| value),
            Err(e) => Err(e),
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
                other => return other,
            }
        }
    }
}
