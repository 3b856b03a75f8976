//! What a statement does, as SQLite itself sees it when it prepares the
//! statement on the read-only connection: the authorizer reports
//! transaction control, and `sqlite3_stmt_readonly` whether it writes.
//! Nothing here parses SQL text.

use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, Authorization, TransactionOperation};

use crate::error::Error;
use crate::reader::Reader;

/// What a savepoint statement does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SavepointOp {
    /// `SAVEPOINT name`: outside a transaction, it begins one.
    Begin,
    /// `RELEASE [SAVEPOINT] name`: of the transaction's first, it commits.
    Release,
    /// `ROLLBACK TO [SAVEPOINT] name`.
    RollbackTo,
}

/// What a write changes by its own top-level statement (not its
/// triggers'): SQLite's `last_insert_rowid()` follows an INSERT, and
/// `changes()` any INSERT, UPDATE or DELETE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// It inserts rows into a table.
    pub insert: bool,
    /// It inserts, updates or deletes rows of a table.
    pub dml: bool,
}

/// What one statement does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only reads: it can run on a reader. `tables`: it reads a table, a
    /// view or a pragma (inside a transaction it must see the
    /// transaction's own writes); without, it computes from values and
    /// functions alone (`SELECT last_insert_rowid()`).
    Read {
        /// It reads a table, a view or a pragma.
        tables: bool,
    },
    /// Writes (or may): it must go through the arbiter.
    Write(Changes),
    /// `BEGIN [DEFERRED|IMMEDIATE|EXCLUSIVE]`.
    Begin,
    /// `COMMIT` or `END`.
    Commit,
    /// `ROLLBACK` (of the whole transaction, not `ROLLBACK TO`).
    Rollback,
    /// `SAVEPOINT`, `RELEASE` or `ROLLBACK TO`, and the savepoint's name.
    Savepoint(SavepointOp, String),
    /// `PRAGMA foreign_keys = X` (`set`), or `PRAGMA foreign_keys`,
    /// which reads it. SQLite checks foreign keys per connection, and the
    /// writes go to the arbiter's: a caller sends its setting with them
    /// (run here, the pragma leaves SQLite's reading of `X` to read back).
    ForeignKeys {
        /// It sets the value.
        set: bool,
    },
    /// `PRAGMA query_only = X` (`set`), or `PRAGMA query_only`: a
    /// connection's own refusal to write, which the reader (always
    /// query-only) cannot keep for its caller.
    QueryOnly {
        /// It sets the value.
        set: bool,
    },
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
        let changes: Arc<Mutex<Changes>> = Arc::default();
        let tables: Arc<Mutex<bool>> = Arc::default();
        // Whether SQLite asked about anything but a function: a VACUUM
        // asks about nothing else, so only then is it worth asking
        // whether this is one (see `copy`).
        let asked: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let (hook, counts, reads) = (seen.clone(), changes.clone(), tables.clone());
        let asked_here = asked.clone();
        self.connection_mut()
            .authorizer(Some(move |ctx: rusqlite::hooks::AuthContext<'_>| {
                // The statement's own rows, not a trigger's nor the schema
                // table's (which DDL writes).
                let own = |table: &str| {
                    ctx.accessor.is_none() && !table.to_ascii_lowercase().starts_with("sqlite_")
                };
                if !matches!(ctx.action, AuthAction::Function { .. }) {
                    asked_here.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                match ctx.action {
                    AuthAction::Insert { table_name } if own(table_name) => {
                        let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
                        c.insert = true;
                        c.dml = true;
                    }
                    AuthAction::Update { table_name, .. } | AuthAction::Delete { table_name }
                        if own(table_name) =>
                    {
                        counts.lock().unwrap_or_else(|p| p.into_inner()).dml = true;
                    }
                    AuthAction::Read { .. } | AuthAction::Pragma { .. } => {
                        *reads.lock().unwrap_or_else(|p| p.into_inner()) = true;
                    }
                    _ => {}
                }
                let kind = match ctx.action {
                    AuthAction::Transaction { operation } => match operation {
                        TransactionOperation::Begin => Kind::Begin,
                        TransactionOperation::Rollback => Kind::Rollback,
                        // COMMIT and END (SQLite names neither).
                        _ => Kind::Commit,
                    },
                    AuthAction::Savepoint {
                        operation,
                        savepoint_name,
                    } => Kind::Savepoint(
                        match operation {
                            TransactionOperation::Begin => SavepointOp::Begin,
                            TransactionOperation::Release => SavepointOp::Release,
                            _ => SavepointOp::RollbackTo,
                        },
                        savepoint_name.to_owned(),
                    ),
                    AuthAction::Pragma {
                        pragma_name,
                        pragma_value,
                    } if pragma_name.eq_ignore_ascii_case("foreign_keys") => Kind::ForeignKeys {
                        set: pragma_value.is_some(),
                    },
                    AuthAction::Pragma {
                        pragma_name,
                        pragma_value,
                    } if pragma_name.eq_ignore_ascii_case("query_only") => Kind::QueryOnly {
                        set: pragma_value.is_some(),
                    },
                    _ => return Authorization::Allow,
                };
                *hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(kind);
                Authorization::Allow
            }))?;
        let prepared = self.connection().prepare(sql).map(|stmt| stmt.readonly());
        self.connection_mut()
            .authorizer(None::<fn(rusqlite::hooks::AuthContext<'_>) -> Authorization>)?;
        let readonly = prepared?;
        let control = seen.lock().unwrap_or_else(|p| p.into_inner()).take();
        // A backup made by reading (see `copy`): it reads every table.
        let copy = !readonly
            && control.is_none()
            && !asked.load(std::sync::atomic::Ordering::Relaxed)
            && self
                .connection()
                .prepare(sql)
                .is_ok_and(|stmt| self.is_vacuum_into(&stmt, sql));
        Ok(match control {
            Some(kind) => kind,
            None if copy => Kind::Read { tables: true },
            None if readonly => Kind::Read {
                tables: *tables.lock().unwrap_or_else(|p| p.into_inner()),
            },
            None => Kind::Write(*changes.lock().unwrap_or_else(|p| p.into_inner())),
        })
    }
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
            ("SELECT * FROM t", Kind::Read { tables: true }),
            ("VACUUM INTO '/nowhere'", Kind::Read { tables: true }),
            ("VACUUM", Kind::Write(Changes::default())),
            (
                "  with x AS (SELECT 1) SELECT * FROM x",
                Kind::Read { tables: false },
            ),
            ("PRAGMA table_info(t)", Kind::Read { tables: true }),
            (
                "SELECT last_insert_rowid(), changes()",
                Kind::Read { tables: false },
            ),
            (
                "INSERT INTO t VALUES (1)",
                Kind::Write(Changes {
                    insert: true,
                    dml: true,
                }),
            ),
            (
                "UPDATE t SET a = 2",
                Kind::Write(Changes {
                    insert: false,
                    dml: true,
                }),
            ),
            ("CREATE TABLE u(b)", Kind::Write(Changes::default())),
            ("begin immediate", Kind::Begin),
            ("BEGIN", Kind::Begin),
            ("COMMIT", Kind::Commit),
            ("end transaction", Kind::Commit),
            ("ROLLBACK", Kind::Rollback),
            (
                "SAVEPOINT s",
                Kind::Savepoint(SavepointOp::Begin, "s".into()),
            ),
            ("PRAGMA foreign_keys = ON", Kind::ForeignKeys { set: true }),
            (
                "pragma main.FOREIGN_KEYS=0",
                Kind::ForeignKeys { set: true },
            ),
            ("PRAGMA foreign_keys", Kind::ForeignKeys { set: false }),
            ("pragma query_only = yes", Kind::QueryOnly { set: true }),
            ("PRAGMA query_only", Kind::QueryOnly { set: false }),
            (
                "ROLLBACK TO s",
                Kind::Savepoint(SavepointOp::RollbackTo, "s".into()),
            ),
            (
                "release savepoint S",
                Kind::Savepoint(SavepointOp::Release, "S".into()),
            ),
        ] {
            assert_eq!(r.classify(sql).unwrap(), kind, "{sql}");
        }
        assert!(r.classify("SELEC 1").is_err());
    }
}
