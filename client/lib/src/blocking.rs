//! A blocking client, for synchronous programs (in the manner of
//! `reqwest::blocking`): the same [`Client`](crate::Client) behind a
//! runtime of its own. Do not use it inside an async runtime.

use std::time::Instant;

use scribe_protocol::{
    Batch, Params, Paths, Receipt, Statement, StatementResult, Status, WriteError,
};

use crate::options::Options;
use crate::retry::{self, Backoff};
use crate::run_transaction::{next_attempt, Failed};

/// A blocking [`Client`](crate::Client).
#[derive(Debug)]
pub struct Client {
    rt: tokio::runtime::Runtime,
    inner: crate::Client,
}

/// A write session of a blocking client.
#[derive(Debug)]
pub struct Transaction<'c> {
    rt: &'c tokio::runtime::Runtime,
    inner: crate::Transaction,
}

fn runtime() -> Result<tokio::runtime::Runtime, WriteError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| WriteError::Unavailable {
            reason: format!("cannot start a runtime: {e}"),
        })
}

impl Client {
    /// Connects (see [`crate::Client::connect`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Client::connect`].
    pub fn connect(paths: &Paths, options: &Options) -> Result<Client, WriteError> {
        let rt = runtime()?;
        let inner = rt.block_on(crate::Client::connect(paths, options))?;
        Ok(Client { rt, inner })
    }

    /// Writes a batch (see [`crate::Client::write`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Client::write`].
    pub fn write(&self, batch: Batch) -> Result<Receipt, WriteError> {
        self.rt.block_on(self.inner.write(batch))
    }

    /// Brings the schema up to the last of `list` (see
    /// [`crate::Client::migrate`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Client::migrate`].
    pub fn migrate(
        &self,
        list: Vec<scribe_protocol::Migration>,
    ) -> Result<scribe_protocol::MigrateReport, WriteError> {
        self.rt.block_on(self.inner.migrate(list))
    }

    /// The arbiter's status.
    ///
    /// # Errors
    ///
    /// As [`crate::Client::status`].
    pub fn status(&self) -> Result<Status, WriteError> {
        self.rt.block_on(self.inner.status())
    }

    /// Begins a write session (commit or roll it back yourself).
    ///
    /// # Errors
    ///
    /// As [`crate::Client::begin`].
    pub fn begin(&self) -> Result<Transaction<'_>, WriteError> {
        let inner = self.rt.block_on(self.inner.begin())?;
        Ok(Transaction {
            rt: &self.rt,
            inner,
        })
    }

    /// Runs `f` in a write session and commits it, running it again as a
    /// whole when the session ends before its commit (see
    /// [`crate::Client::transaction`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Client::transaction`].
    pub fn transaction<T>(
        &self,
        mut f: impl FnMut(&Transaction<'_>) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        crate::inside::refuse_inside(self.inner.id(), "a transaction")?;
        let deadline = retry::deadline(self.inner.options().retry_for);
        let mut backoff = Backoff::default();
        loop {
            let error = match self.attempt(&mut f, deadline) {
                Ok(v) => return Ok(v),
                Err(Failed::Own(e)) => return Err(e),
                Err(Failed::Session(e)) => e,
            };
            let Some((pause, reconnect)) =
                next_attempt(&error, &mut backoff, deadline, self.inner.paths())
            else {
                return Err(retry::given_up(error, self.inner.paths()));
            };
            if reconnect {
                self.rt.block_on(self.inner.reconnect());
            }
            std::thread::sleep(pause);
        }
    }

    fn attempt<T>(
        &self,
        f: &mut impl FnMut(&Transaction<'_>) -> Result<T, WriteError>,
        deadline: Instant,
    ) -> Result<T, Failed> {
        let tx = Transaction {
            rt: &self.rt,
            inner: self.rt.block_on(self.inner.lazy_transaction())?,
        };
        let value = match crate::inside::running_blocking(self.inner.id(), || f(&tx)) {
            Ok(v) => v,
            Err(e) => {
                let failed = Failed::of_function(e, &tx.inner);
                let _ = tx.rollback();
                return Err(failed);
            }
        };
        let key = crate::retry::new_key();
        match self
            .rt
            .block_on(tx.inner.clone().commit_with_key(Some(key.clone())))
        {
            Ok(_) => Ok(value),
            Err(WriteError::Timeout { .. }) => Ok(self
                .rt
                .block_on(self.inner.ask_again(&key, deadline))
                .map(|_| value)?),
            Err(e) => Err(e.into()),
        }
    }
}

impl Transaction<'_> {
    /// Runs one statement (see [`crate::Transaction::exec`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Transaction::exec`].
    pub fn exec(&self, statement: Statement) -> Result<StatementResult, WriteError> {
        self.rt.block_on(self.inner.exec(statement))
    }

    /// Runs statements in one round trip (see
    /// [`crate::Transaction::exec_many`]).
    ///
    /// # Errors
    ///
    /// As [`crate::Transaction::exec`].
    pub fn exec_many(&self, statements: Vec<Statement>) -> Result<StatementResult, WriteError> {
        self.rt.block_on(self.inner.exec_many(statements))
    }

    /// Runs `sql` with `params`.
    ///
    /// # Errors
    ///
    /// As [`crate::Transaction::exec`].
    pub fn execute(&self, sql: &str, params: Params) -> Result<StatementResult, WriteError> {
        self.rt.block_on(self.inner.execute(sql, params))
    }

    /// Commits.
    ///
    /// # Errors
    ///
    /// As [`crate::Transaction::commit`].
    pub fn commit(self) -> Result<Receipt, WriteError> {
        self.rt.block_on(self.inner.clone().commit())
    }

    /// Rolls back.
    ///
    /// # Errors
    ///
    /// As [`crate::Transaction::rollback`].
    pub fn rollback(self) -> Result<(), WriteError> {
        self.rt.block_on(self.inner.clone().rollback())
    }
}

impl Drop for Transaction<'_> {
    /// Dropped without its commit or rollback (a function that panicked or
    /// returned early, a handle let go): rolled back now, as a SQLite
    /// transaction is, rather than holding the writer until its idle lease
    /// lapses. The runtime is this client's own, idle between calls: the
    /// rollback is sent and its answer awaited here.
    fn drop(&mut self) {
        let Some(session) = self.inner.take_unfinished() else {
            return;
        };
        let conn = self.inner.connection();
        let request = scribe_protocol::frame::Request::Rollback { session };
        let timeout = conn.options().call_timeout;
        let roll_back = || {
            let _ = self.rt.block_on(conn.call(&request, timeout));
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            // In a runtime's context (`spawn_blocking`, or misuse) block_on
            // would panic here: it runs on a thread of its own.
            std::thread::scope(|s| {
                let _ = s.spawn(roll_back).join();
            });
        } else {
            roll_back();
        }
    }
}
