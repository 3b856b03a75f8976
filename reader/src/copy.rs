//! `VACUUM INTO`: a copy of the database into another file, as programs
//! and `sqlite3` users make a backup. It only reads the database (SQLite
//! runs it on a read-only connection), but the reader's `query_only` belt
//! refused it ("attempt to write a readonly database", leaving an empty
//! file behind), and the write path refuses every VACUUM. So it runs here
//! with the belt off for that one statement; the connection stays opened
//! read-only, so the database itself still cannot be written.

use rusqlite::Statement;

use crate::error::Error;
use crate::reader::Reader;

impl Reader {
    /// Whether `stmt` (the text `sql`) is a `VACUUM … INTO`, as SQLite
    /// compiles it: its program holds a `Vacuum` op whose second operand
    /// (the target's register) is set. Asked only of a statement SQLite
    /// says writes, so a read costs nothing more.
    pub(crate) fn is_vacuum_into(&self, stmt: &Statement<'_>, sql: &str) -> bool {
        if stmt.readonly() {
            return false;
        }
        let Ok(mut explain) = self.connection().prepare(&format!("EXPLAIN {sql}")) else {
            return false;
        };
        // Parameters left unbound (NULL): the program is the same.
        let mut rows = explain.raw_query();
        while let Ok(Some(row)) = rows.next() {
            let op: String = row.get(1).unwrap_or_default();
            let into: i64 = row.get(3).unwrap_or(0);
            if op == "Vacuum" && into != 0 {
                return true;
            }
        }
        false
    }

    /// Runs `f` with `query_only` off, and turns it on again whatever `f`
    /// returned.
    pub(crate) fn unbelted<T>(&self, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
        self.connection().execute_batch("PRAGMA query_only=0")?;
        let out = f();
        self.connection().execute_batch("PRAGMA query_only=1")?;
        out
    }
}
