//! Foreign-key checks per request.
//!
//! SQLite checks foreign keys per connection (`PRAGMA foreign_keys`) and
//! lets the setting change only outside a transaction; every write here
//! runs on the arbiter's one connection. So a write, or a session's begin,
//! may say whether it is checked, the operator's `--pragma foreign_keys`
//! being the default for those that do not, and the pragma is set before
//! a transaction begins whenever it differs from what the connection has.
//! A group commits only writes that want the same (`writer::commit`
//! splits the others off, in order).
//!
//! A caller needs this to rebuild a table the standard way (create, copy,
//! drop, rename, with foreign keys off): with them on, the `DROP TABLE`
//! cascades to the rows that point at the table, or fails.

use std::cell::Cell;

use rusqlite::Connection;
use scribe_protocol::WriteError;

use crate::group::{commit_error, Session};

/// The connection's setting and the default.
#[derive(Debug)]
pub struct ForeignKeys {
    /// The operator's setting, for requests that do not say.
    default: bool,
    /// What the connection has now.
    now: Cell<bool>,
}

impl ForeignKeys {
    /// What `conn` has now, which is the default from then on (read once
    /// the operator's pragmas are applied).
    ///
    /// # Errors
    ///
    /// SQLite's error.
    pub fn read(conn: &Connection) -> rusqlite::Result<ForeignKeys> {
        let on: bool = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
        Ok(ForeignKeys {
            default: on,
            now: Cell::new(on),
        })
    }

    /// Whether a request that does not say is checked.
    pub fn default_on(&self) -> bool {
        self.default
    }

    /// Whether a request that asked `asked` is checked.
    pub fn wanted(&self, asked: Option<bool>) -> bool {
        asked.unwrap_or(self.default)
    }
}

impl Session {
    /// Sets `PRAGMA foreign_keys` for the transaction about to begin, as
    /// `asked` (`None`: the default). Called with no transaction open:
    /// inside one SQLite ignores the pragma.
    ///
    /// # Errors
    ///
    /// The pragma's error.
    pub fn foreign_keys_for(&self, asked: Option<bool>) -> Result<(), WriteError> {
        let want = self.foreign_keys.wanted(asked);
        if want == self.foreign_keys.now.get() {
            return Ok(());
        }
        debug_assert!(
            self.conn.is_autocommit(),
            "foreign_keys set inside a transaction"
        );
        let sql = if want {
            "PRAGMA foreign_keys=ON"
        } else {
            "PRAGMA foreign_keys=OFF"
        };
        self.guard
            .trusted(|| self.conn.execute_batch(sql))
            .map_err(commit_error)?;
        self.foreign_keys.now.set(want);
        Ok(())
    }
}

#[cfg(test)]
#[path = "foreign_keys_tests.rs"]
mod tests;
