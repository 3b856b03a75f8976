//! Write sessions (interactive transactions): [`Transaction`]
//! ([`crate::run_transaction`] runs a closure in one, again as a whole
//! when the session ends before its commit).
//!
//! A session holds the arbiter's writer from its begin to its end: batches
//! are the fast path, sessions are for read-decide-write steps that need
//! code in between.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use scribe_protocol::frame::{Answer, Request};
use scribe_protocol::{
    BeginRequest, Lease, Params, Receipt, Statement, StatementResult, WriteError, LATEST_SESSION,
};

use crate::connection::{unexpected, Connection};

/// A write session on one connection. Cheap to clone; every call goes to
/// the same session, in order.
///
/// One made by [`crate::Client::transaction`] begins with its first call: the
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
    /// Whether a call met an end that running the transaction again may
    /// get past (it lapsed, the arbiter went away or was full): an error
    /// of the transaction's function that did not come from its session
    /// is the function's own, and is not a reason to run it again.
    ended: AtomicBool,
    /// Its commit or rollback was sent.
    finished: AtomicBool,
    /// Where a rollback goes when the last handle is dropped unfinished.
    conn: Connection,
}

impl Drop for State {
    /// A transaction dropped without its commit or rollback (a function
    /// that panicked, a future cancelled, a handle let go) is rolled back
    /// now: its session held the writer, every other caller waiting, until
    /// its idle lease lapsed. The rollback is queued without waiting for
    /// its answer; the connection's task sends it.
    fn drop(&mut self) {
        if self.finished.load(Ordering::Relaxed) || self.rolled_back.get().is_some() {
            return;
        }
        if let Some(&(session, _)) = self.began.get() {
            self.conn.send_only(&Request::Rollback { session });
        }
    }
}

impl Connection {
    /// Begins a write session; returns once the writer serves it (it
    /// waits in the queue like a batch).
    ///
    /// # Errors
    ///
    /// `Overloaded`, `ShuttingDown`, `Expired` when the begin had no answer
    /// within a call's timeout plus 30 s (nothing of it was written), or
    /// the connection's errors.
    pub async fn begin(&self, request: BeginRequest) -> Result<Transaction, WriteError> {
        let timeout = begin_timeout(self.options().call_timeout);
        let began = self.call(&Request::Begin(request), timeout).await;
        match began.map_err(|e| unanswered_begin(e, timeout))? {
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
                ended: AtomicBool::new(false),
                finished: AtomicBool::new(false),
                conn: self.clone(),
            }),
        }
    }
}

/// How long a begin may wait for its answer: it waits in the queue behind
/// other sessions, longer than a call. With only `call_timeout` a begin
/// behind a few sessions failed.
fn begin_timeout(call: Duration) -> Duration {
    Duration::from_secs(30).saturating_add(call.saturating_mul(2))
}

/// A begin with no answer: nothing of its session can have been written (a
/// `Timeout` said "may or may not have committed", and a transaction was
/// not run again).
fn unanswered_begin(e: WriteError, waited: Duration) -> WriteError {
    match e {
        WriteError::Timeout { .. } => WriteError::Expired {
            reason: format!(
                "its begin had no answer within {} (it waits in the queue behind other \
                 writers)",
                humantime::format_duration(waited)
            ),
        },
        other => other,
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
        match &answer {
            Err(e @ WriteError::RolledBack { .. }) => {
                let _ = self.state.rolled_back.set(e.clone());
            }
            Err(e) if crate::run_transaction::run_again(e) => {
                self.state.ended.store(true, Ordering::Relaxed);
            }
            _ => {}
        }
        answer
    }

    /// The session to roll back when a handle that ends it is dropped
    /// unfinished (marked finished: it is rolled back once).
    pub(crate) fn take_unfinished(&self) -> Option<u64> {
        let began = self.state.began.get().map(|&(id, _)| id)?;
        let done = self.state.finished.swap(true, Ordering::Relaxed);
        (!done && self.state.rolled_back.get().is_none()).then_some(began)
    }

    /// The connection the session lives on.
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Whether one of its calls met an end that running the transaction
    /// again may get past.
    pub(crate) fn met_an_end(&self) -> bool {
        self.state.ended.load(Ordering::Relaxed)
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
                (&begin, begin_timeout(self.conn.options().call_timeout)),
                (&request, timeout),
            )
            .await;
        let began =
            began.map_err(|e| unanswered_begin(e, begin_timeout(self.conn.options().call_timeout)));
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
    /// The statement's error (the session goes on, and what ran before it
    /// stands: its `Display` words it for a batch, "nothing was written";
    /// `e.message(Undone::Statement)` ([`crate::Undone`]) words it for a session, as the JSON
    /// transports and the shell do); `RolledBack` when
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
        self.state.finished.store(true, Ordering::Relaxed);
        let timeout = self.conn.options().call_timeout;
        let make = |session| Request::Commit {
            session,
            key,
            open_on_constraint: false,
        };
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
        self.state.finished.store(true, Ordering::Relaxed);
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
        match self.call(make, timeout).await {
            Ok(Answer::RolledBack) => Ok(()),
            Ok(other) => Err(unexpected("rollback", &other)),
            // After the end was reported the arbiter no longer knows the
            // session ("this connection has no open session"): it ended.
            Err(WriteError::Protocol { message }) if self.met_an_end() => {
                Err(WriteError::Expired {
                    reason: format!("it had ended already ({message})"),
                })
            }
            Err(e) => Err(e),
        }
    }
}
