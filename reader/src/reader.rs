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
        if let Some(message) = scribe_protocol::names::name_trouble(paths) {
            return Err(Error::OtherName {
                path: paths.db.clone(),
                message,
            });
        }
        let conn = Connection::open_with_flags(
            &paths.db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // foreign_keys off as SQLite's default has it (the bundled build
        // turns it on): `PRAGMA foreign_keys` reads as it does elsewhere.
        conn.execute_batch("PRAGMA query_only=1; PRAGMA foreign_keys=0")?;
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
            if let Err(why) = create(paths) {
                // Made by an arbiter still busy starting (migrations at
                // open): read as any served file is meanwhile, as it was
                // before them.
                let made = scribe_protocol::starting::starting(paths)
                    .is_some_and(|s| s.phase != scribe_protocol::starting::phase::OPENING);
                if !made || !paths.db.exists() {
                    return Err(Error::NotFound {
                        path: paths.db.clone(),
                        why: Some(why),
                    });
                }
            }
        }
        Reader::open(paths)
    }

    /// Runs one query.
    ///
    /// # Errors
    ///
    /// SQLite's error (syntax, a write attempt, a missing table…).
    pub fn query(&self, sql: &str, params: &Params) -> Result<Rows, Error> {
        self.schema_checked_for(sql);
        let mut stmt = self.conn.prepare_cached(sql)?;
        if values::is_empty(&stmt) {
            return Err(Error::Empty);
        }
        values::bind(&mut stmt, params)?;
        let vacuum_into = self.is_vacuum_into(&stmt, sql);
        let mut run = || {
            let c = values::collect(&mut stmt, usize::MAX)?;
            Ok(Rows {
                columns: c.columns,
                rows: c.rows,
            })
        };
        if vacuum_into {
            return self.unbelted(run);
        }
        run()
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
        self.schema_checked_for(sql);
        let mut stmt = self.conn.prepare_cached(sql)?;
        if values::is_empty(&stmt) {
            return Err(Error::Empty);
        }
        values::bind(&mut stmt, params)?;
        let vacuum_into = self.is_vacuum_into(&stmt, sql);
        let run = || {
            values::each(&mut stmt, |s| columns(values::names(s)), row)?;
            Ok(())
        };
        if vacuum_into {
            return self.unbelted(run);
        }
        run()
    }

    /// The last commit sequence visible to this connection (0 before the
    /// arbiter has committed anything).
    ///
    /// # Errors
    ///
    /// SQLite's error.
    pub fn current_seq(&self) -> Result<u64, Error> {
        // A file an arbiter of an older release still writes has no view:
        // its `_scribe_meta` row is then bumped by every commit.
        let seq = match self.one_value("SELECT seq FROM _scribe_seq")? {
            Some(seq) => Some(seq),
            None => self.one_value("SELECT value FROM _scribe_meta WHERE key = 'seq'")?,
        };
        Ok(seq.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
    }

    /// The one value `sql` reads; `None` when it reads no row or its table
    /// does not exist (yet).
    fn one_value(&self, sql: &str) -> Result<Option<i64>, Error> {
        let found = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row([], |r| r.get(0)));
        match found {
            Ok(v) => Ok(v),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(rusqlite::Error::SqliteFailure(_, Some(ref m))) if m.contains("no such table") => {
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
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

    /// Before an `EXPLAIN`: SQLite plans it from the schema it has loaded
    /// and, as it reads no table, never checks that schema against the
    /// file, so after an index made since (by the arbiter) it showed the
    /// old plan. A read of the schema table checks first.
    fn schema_checked_for(&self, sql: &str) {
        let head = sql.trim_start().get(..7).unwrap_or("");
        if head.eq_ignore_ascii_case("explain") {
            // Its rows do not matter, nor its failure (the EXPLAIN's own
            // prepare says what is wrong).
            let _ = self
                .conn
                .prepare_cached("SELECT 1 FROM sqlite_schema LIMIT 1")
                .and_then(|mut s| s.exists([]));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seq_comes_from_the_view_and_from_the_meta_row_of_an_older_file() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::for_db(&dir.path().join("s.db"), None).unwrap();
        let w = Connection::open(&paths.db).unwrap();
        w.execute_batch("CREATE TABLE x(a)").unwrap();
        let r = Reader::open(&paths).unwrap();
        assert_eq!(r.current_seq().unwrap(), 0, "no scribe tables yet");
        // As an arbiter of the previous release leaves it: no view.
        w.execute_batch(
            "CREATE TABLE _scribe_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT INTO _scribe_meta VALUES ('seq', 5);",
        )
        .unwrap();
        assert_eq!(r.current_seq().unwrap(), 5);
        w.execute_batch(
            "CREATE TABLE _scribe_requests(id INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
             INSERT INTO _scribe_requests(seq) VALUES (6), (8);
             CREATE VIEW _scribe_seq(seq) AS SELECT max(
                 coalesce((SELECT value FROM _scribe_meta WHERE key = 'seq'), 0),
                 coalesce((SELECT seq FROM _scribe_requests ORDER BY id DESC LIMIT 1), 0));",
        )
        .unwrap();
        assert_eq!(r.current_seq().unwrap(), 8);
    }
}
