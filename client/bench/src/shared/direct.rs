//! Direct SQLite, the way multi-process tools do it today: each process
//! its own connection, `busy_timeout` first, `BEGIN IMMEDIATE` per write,
//! SQLITE_BUSY retried (and counted); optionally inside a `flock` on a
//! side file.

use std::fs::File;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use rusqlite::{Connection, ErrorCode, OpenFlags};

/// `busy_timeout` of direct connections, as the tools that do this use.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A direct writer connection.
pub struct Direct {
    /// The connection.
    pub conn: Connection,
    lock: Option<File>,
    /// Tries that met SQLITE_BUSY.
    pub busy: u64,
}

/// Why a direct transaction did not commit.
pub enum Failed {
    /// An expectation was not met (rolled back).
    Conflict,
    /// SQLite refused.
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for Failed {
    fn from(e: rusqlite::Error) -> Self {
        Failed::Sql(e)
    }
}

impl Direct {
    /// Opens `db` for writing; with `flock`, every transaction also holds
    /// an exclusive lock on `<db>.flock`.
    ///
    /// # Errors
    ///
    /// SQLite's or the lock file's error, as text.
    pub fn open(db: &str, sync: &str, flock: bool) -> Result<Direct, String> {
        let conn = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| e.to_string())?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
        conn.execute_batch(&format!("PRAGMA synchronous={sync}"))
            .map_err(|e| e.to_string())?;
        let lock = if flock {
            Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(format!("{db}.flock"))
                    .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        Ok(Direct {
            conn,
            lock,
            busy: 0,
        })
    }

    /// Runs `f` inside `BEGIN IMMEDIATE … COMMIT`, retrying the whole
    /// transaction on SQLITE_BUSY.
    ///
    /// # Errors
    ///
    /// `Conflict` when `f` says so (rolled back), or SQLite's error.
    pub fn transaction<T>(
        &mut self,
        mut f: impl FnMut(&Connection) -> Result<T, Failed>,
    ) -> Result<T, Failed> {
        let _held = match &self.lock {
            Some(file) => Some(
                Flock::lock(
                    file.try_clone().map_err(|e| Failed::Sql(io_err(e)))?,
                    FlockArg::LockExclusive,
                )
                .map_err(|(_, e)| Failed::Sql(io_err(e.into())))?,
            ),
            None => None,
        };
        loop {
            match self.try_once(&mut f) {
                Err(Failed::Sql(e)) if is_busy(&e) => {
                    self.busy += 1;
                    let _ = self.conn.execute_batch("ROLLBACK");
                    std::thread::sleep(Duration::from_micros(200));
                }
                other => return other,
            }
        }
    }

    fn try_once<T>(
        &mut self,
        f: &mut impl FnMut(&Connection) -> Result<T, Failed>,
    ) -> Result<T, Failed> {
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        match f(&self.conn) {
            Ok(v) => {
                self.conn.prepare_cached("COMMIT")?.execute([])?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

fn io_err(e: std::io::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

/// True for SQLITE_BUSY and SQLITE_LOCKED.
pub fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}
