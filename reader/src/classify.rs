//! What a statement does, as SQLite itself sees it when it prepares the
//! statement on the read-only connection: the authorizer reports
//! transaction control, and `sqlite3_stmt_readonly` whether it writes.
//! Nothing here parses SQL text.

use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, Authorization, TransactionOperation};

use crate::error::Error;
use crate::reader::Reader;

/// What one statement does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only reads: it can run on a reader.
    Read,
    /// Writes (or may): it must go through the arbiter.
    Write,
    /// `BEGIN [DEFERRED|IMMEDIATE|EXCLUSIVE]`.
    Begin,
    /// `COMMIT` or `END`.
    Commit,
    /// `ROLLBACK` (of the whole transaction, not `ROLLBACK TO`).
    Rollback,
    /// `SAVEPOINT`, `RELEASE` or `ROLLBACK TO`.
    Savepoint,
    /// `PRAGMA foreign_keys = X`: whether the connection's writes are
    /// checked from now on, as SQLite reads `X` (a word it does not know
    /// is off); `None` for `PRAGMA foreign_keys`, which reads it. SQLite
    /// checks foreign keys per connection, and the writes go to the
    /// arbiter's: a caller sends the setting with them.
    ForeignKeys(Option<bool>),
}

impl Reader {
    /// Classifies the first statement of `sql`.
    ///
    /// # Errors
    ///
    /// SQLite's error when it cannot prepare the statement here (a table
    /// this connection does not see yet, a syntax error): the caller
    /// decides (a write path reports the arbiter's own answer).
    pub fn classify(&mut self, sql: &str) -> Result<Kind, Error> {
        let seen: Arc<Mutex<Option<Kind>>> = Arc::default();
        let hook = seen.clone();
        self.connection_mut()
            .authorizer(Some(move |ctx: rusqlite::hooks::AuthContext<'_>| {
                let kind = match ctx.action {
                    AuthAction::Transaction { operation } => match operation {
                        TransactionOperation::Begin => Kind::Begin,
                        TransactionOperation::Rollback => Kind::Rollback,
                        // COMMIT and END (SQLite names neither).
                        _ => Kind::Commit,
                    },
                    AuthAction::Savepoint { .. } => Kind::Savepoint,
                    AuthAction::Pragma {
                        pragma_name,
                        pragma_value,
                    } if pragma_name.eq_ignore_ascii_case("foreign_keys") => {
                        Kind::ForeignKeys(pragma_value.map(sqlite_boolean))
                    }
                    _ => return Authorization::Allow,
                };
                *hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(kind);
                Authorization::Allow
            }))?;
        let prepared = self.connection().prepare(sql).map(|stmt| stmt.readonly());
        self.connection_mut()
            .authorizer(None::<fn(rusqlite::hooks::AuthContext<'_>) -> Authorization>)?;
        let readonly = prepared?;
        let control = *seen.lock().unwrap_or_else(|p| p.into_inner());
        Ok(match control {
            Some(kind) => kind,
            None if readonly => Kind::Read,
            None => Kind::Write,
        })
    }
}

/// A boolean pragma's value as SQLite reads it: a number (decimal, or
/// hexadecimal after `0x`) is true unless it is 0 or does not fit in 32
/// bits; `on`, `yes` and `true` are true; anything else (`full`, `extra`,
/// a negative number) is false.
fn sqlite_boolean(value: &str) -> bool {
    let v = value.trim().trim_matches(|c| c == '\'' || c == '"');
    if !v.starts_with(|c: char| c.is_ascii_digit()) {
        return ["on", "yes", "true"]
            .iter()
            .any(|w| v.eq_ignore_ascii_case(w));
    }
    let hex = v
        .strip_prefix("0x")
        .or_else(|| v.strip_prefix("0X"))
        .filter(|h| h.starts_with(|c: char| c.is_ascii_hexdigit()));
    let (digits, radix, most) = match hex {
        Some(h) => (h.trim_start_matches('0'), 16, 8),
        None => (v.trim_start_matches('0'), 10, 10),
    };
    let len = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    if len > most {
        return false;
    }
    u64::from_str_radix(&digits[..len], radix).is_ok_and(|n| n != 0 && n <= 0x7fff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use scribe_protocol::Paths;

    #[test]
    fn sqlite_tells_reads_writes_and_transaction_control_apart() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE t(a)").unwrap();
        drop(c);
        let mut r = Reader::open(&Paths::for_db(&db, None).unwrap()).unwrap();
        for (sql, kind) in [
            ("SELECT * FROM t", Kind::Read),
            ("  with x AS (SELECT 1) SELECT * FROM x", Kind::Read),
            ("PRAGMA table_info(t)", Kind::Read),
            ("INSERT INTO t VALUES (1)", Kind::Write),
            ("CREATE TABLE u(b)", Kind::Write),
            ("begin immediate", Kind::Begin),
            ("BEGIN", Kind::Begin),
            ("COMMIT", Kind::Commit),
            ("end transaction", Kind::Commit),
            ("ROLLBACK", Kind::Rollback),
            ("SAVEPOINT s", Kind::Savepoint),
            ("PRAGMA foreign_keys = ON", Kind::ForeignKeys(Some(true))),
            ("pragma main.FOREIGN_KEYS=0", Kind::ForeignKeys(Some(false))),
            ("PRAGMA foreign_keys='yes'", Kind::ForeignKeys(Some(true))),
            ("PRAGMA foreign_keys=maybe", Kind::ForeignKeys(Some(false))),
            ("PRAGMA foreign_keys=full", Kind::ForeignKeys(Some(false))),
            ("PRAGMA foreign_keys=-1", Kind::ForeignKeys(Some(false))),
            ("PRAGMA foreign_keys=1.0", Kind::ForeignKeys(Some(true))),
            ("PRAGMA foreign_keys=0x100", Kind::ForeignKeys(Some(true))),
            (
                "PRAGMA foreign_keys=99999999999",
                Kind::ForeignKeys(Some(false)),
            ),
            ("PRAGMA foreign_keys", Kind::ForeignKeys(None)),
            ("ROLLBACK TO s", Kind::Savepoint),
            ("RELEASE s", Kind::Savepoint),
        ] {
            assert_eq!(r.classify(sql).unwrap(), kind, "{sql}");
        }
        assert!(r.classify("SELEC 1").is_err());
    }
}
