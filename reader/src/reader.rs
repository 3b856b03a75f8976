//! [`Reader`]: a connection that can only read.

use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use scribe_protocol::{Params, Paths, Value};

use crate::error::Error;
use scribe_values as values;

/// How long a read waits on a lock (only a checkpoint in progress or a
/// recovery can hold one).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The result of a query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    /// Column names.
    pub columns: Vec<String>,
    /// Values, row by row.
    pub rows: Vec<Vec<Value>>,
}

/// A read-only connection to a scribe-managed database.
#[derive(Debug)]
pub struct Reader {
    conn: Connection,
}

impl Reader {
    /// Opens the database read-only.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the file does not exist (a reader never
    /// creates it); [`Error::Sqlite`] when SQLite refuses.
    pub fn open(paths: &Paths) -> Result<Reader, Error> {
        if !paths.db.exists() {
            return Err(Error::NotFound {
                path: paths.db.clone(),
                why: None,
            });
        }
        let conn = Connection::open_with_flags(
            &paths.db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch("PRAGMA query_only=1")?;
        Ok(Reader { conn })
    }

    /// Opens the database read-only; when it does not exist yet, calls
    /// `create` (which asks the arbiter to create it) and tries again.
    ///
    /// # Errors
    ///
    /// As [`Reader::open`]; `NotFound` carries `create`'s reason.
    pub fn open_or_create(
        paths: &Paths,
        create: impl FnOnce(&Paths) -> Result<(), String>,
    ) -> Result<Reader, Error> {
        if !paths.db.exists() {
            create(paths).map_err(|why| Error::NotFound {
                path: paths.db.clone(),
                why: Some(why),
            })?;
        }
        Reader::open(paths)
    }

    /// Runs one query.
    ///
    /// # Errors
    ///
    /// SQLite's error (syntax, a write attempt, a missing table…).
    pub fn query(&self, sql: &str, params: &Params) -> Result<Rows, Error> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        values::bind(&mut stmt, params)?;
        let c = values::collect(&mut stmt, usize::MAX)?;
        Ok(Rows {
            columns: c.columns,
            rows: c.rows,
        })
    }

    /// Runs one query, handing over its column names, then each row as it
    /// is read (see [`values::each`]): a result of any size in constant
    /// memory.
    ///
    /// # Errors
    ///
    /// SQLite's error.
    pub fn query_each(
        &self,
        sql: &str,
        params: &Params,
        columns: impl FnOnce(Vec<String>) -> bool,
        row: impl FnMut(Vec<scribe_protocol::Value>) -> bool,
    ) -> Result<(), Error> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        values::bind(&mut stmt, params)?;
        values::each(&mut stmt, columns, row)?;
        Ok(())
    }

    /// The last commit sequence visible to this connection (0 before the
    /// arbiter has committed anything).
    ///
    /// # Errors
    ///
    /// SQLite's error.
    pub fn current_seq(&self) -> Result<u64, Error> {
        let seq: Option<i64> = self
            .conn
            .prepare_cached("SELECT seq FROM _scribe_seq")?
            .query_row([], |r| r.get(0))
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("no such table") => {
                    Ok(None)
                }
                e => Err(e),
            })?;
        Ok(seq.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
    }

    /// Read-your-writes: returns once this connection sees commit `seq`
    /// (the `seq` of a receipt) or later; returns the visible seq.
    ///
    /// It polls the `_scribe_seq` view with a growing pause (20 µs doubling to
    /// 5 ms), so an already visible seq costs one read and a future one
    /// costs a handful, never a spinning core.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when `timeout` passes first.
    pub fn wait_for(&self, seq: u64, timeout: Duration) -> Result<u64, Error> {
        let started = std::time::Instant::now();
        let mut pause = Duration::from_micros(20);
        loop {
            let seen = self.current_seq()?;
            if seen >= seq {
                return Ok(seen);
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(Error::Timeout { seq, seen, waited });
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// The underlying connection, for callers that need rusqlite directly.
    /// It is read-only: writes through it fail.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}
