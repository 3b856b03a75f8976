//! Runs one batch's statements, in order, on the writer connection.
//!
//! The caller (the writer) sees that a failing batch undoes only itself
//! (see [`crate::attempt`]); here a failure only returns the categorized
//! error of the statement that failed. A group's statements stay
//! prepared from one batch to the next ([`Prepared`]).

use rusqlite::Connection;
use scribe_protocol::limits::MAX_RESULT_BYTES;
use scribe_protocol::{Batch, Params, Statement, StatementResult, WriteError};
use scribe_values as values;

use crate::guard::Guard;
pub use crate::sql_error::sql_error;

/// SQLite's generic error code.
pub(crate) const SQLITE_ERROR: i32 = 1;
/// SQLite's "bind index out of range" code.
pub(crate) const SQLITE_RANGE: i32 = 25;

/// Runs every statement of `batch`; on the first failure returns its error.
///
/// # Errors
///
/// `Sql` naming the statement and SQLite's code; `Conflict` when an
/// `expect_rows` is not met; `Refused` naming the rule a statement broke.
pub fn run_batch<'a>(
    conn: &'a Connection,
    guard: &Guard,
    batch: &'a Batch,
    prepared: &mut Prepared<'a>,
) -> Result<Vec<StatementResult>, WriteError> {
    let mut results = Vec::with_capacity(batch.statements.len());
    reset_last_insert_rowid(conn);
    for (i, st) in batch.statements.iter().enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        results.push(run_one(conn, guard, index, st, Some(&mut *prepared))?);
    }
    Ok(results)
}

/// Statements kept prepared from one batch of a group to the next, by
/// their text (the batches' own and the arbiter's key record): a group of
/// the same insert takes it from rusqlite's statement cache once, instead
/// of looking it up and giving it back by its text for every batch (about
/// 1,300 instructions a time, callgrind). Dropped, they go back to the
/// cache.
#[derive(Default)]
pub struct Prepared<'a> {
    held: Vec<(&'a str, rusqlite::CachedStatement<'a>)>,
}

/// Most of the batches' statements a group keeps prepared (the first
/// ones it runs).
const HELD: usize = 8;

impl<'a> Prepared<'a> {
    /// The statement kept for `sql`, its last run's values cleared (they
    /// must not stand in for missing ones; the cache clears them when a
    /// statement comes back).
    fn find(&mut self, sql: &str) -> Option<&mut rusqlite::CachedStatement<'a>> {
        let (_, stmt) = self.held.iter_mut().find(|(text, _)| *text == sql)?;
        stmt.clear_bindings();
        Some(stmt)
    }

    /// One of the arbiter's own statements (run with the guard lowered):
    /// kept, or prepared and kept whatever the count. Its bindings are
    /// left as they are: its caller binds every parameter.
    ///
    /// # Errors
    ///
    /// When it cannot be prepared.
    pub fn own(
        &mut self,
        conn: &'a Connection,
        sql: &'a str,
    ) -> rusqlite::Result<&mut rusqlite::CachedStatement<'a>> {
        if let Some(at) = self.held.iter().position(|(text, _)| *text == sql) {
            return Ok(&mut self.held[at].1);
        }
        let stmt = conn.prepare_cached(sql)?;
        let at = self.held.len();
        self.held.push((sql, stmt));
        Ok(&mut self.held[at].1)
    }
}

/// Runs one statement (statement `index` of its request) and checks its
/// `expect_rows`.
///
/// # Errors
///
/// As [`run_batch`].
pub fn run_one<'a>(
    conn: &'a Connection,
    guard: &Guard,
    index: u32,
    st: &'a Statement,
    prepared: Option<&mut Prepared<'a>>,
) -> Result<StatementResult, WriteError> {
    let result = run_statement(conn, guard, &st.sql, &st.params, prepared)
        .map_err(|e| categorize(conn, guard, index, st, e))?;
    if let Some(expected) = st.expect_rows {
        if result.rows_affected != expected {
            return Err(WriteError::Conflict {
                statement: Some(index),
                message: format!(
                    "expected {expected} row(s) affected, got {}",
                    result.rows_affected
                ),
            });
        }
    }
    Ok(result)
}

/// A statement's failure as the caller is told it.
fn categorize(
    conn: &Connection,
    guard: &Guard,
    index: u32,
    st: &Statement,
    e: Failure,
) -> WriteError {
    match e {
        // A denial by the authorizer surfaces as SQLITE_AUTH or, for a
        // function, as a plain error: the recorded rule tells which.
        Failure::Sqlite(e) => match guard.take_denial() {
            Some(rule) => refused(index, rule),
            // SQLite refuses VACUUM in a transaction with a plain error;
            // a constraint or any other failure is not one.
            None if primary_code(&e) == Some(SQLITE_ERROR) && is_vacuum(conn, &st.sql) => refused(
                index,
                "VACUUM and VACUUM INTO are not allowed: the arbiter owns the database file; \
                 to compact it, `scribe stop --hold`, run VACUUM with sqlite3, then \
                 `scribe start`; a copy (VACUUM INTO) only reads it: make it as a read \
                 (`scribe query`, or a reader's connection) outside a transaction"
                    .into(),
            ),
            None => sql_error(index, e),
        },
        Failure::Empty => WriteError::Sql {
            statement: Some(index),
            code: SQLITE_ERROR,
            message: "the statement holds no SQL (it is empty, or only comments)".into(),
        },
        Failure::TooBig => refused(
            index,
            format!(
                "its rows exceed {} MiB, the most a receipt carries; \
                 read large results through the reader (scribe query)",
                MAX_RESULT_BYTES / (1024 * 1024)
            ),
        ),
    }
}

fn refused(index: u32, rule: String) -> WriteError {
    WriteError::Refused {
        statement: Some(index),
        reason: rule,
    }
}

/// SQLite's primary result code of a failure, when it came from SQLite.
fn primary_code(e: &rusqlite::Error) -> Option<i32> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.extended_code & 0xff),
        _ => None,
    }
}

/// Whether SQLite compiles `sql` to a VACUUM (SQLite decides, not the
/// text: comments, case and spacing do not matter). Asked only after a
/// statement failed, since SQLite itself refuses VACUUM inside the
/// arbiter's transaction.
fn is_vacuum(conn: &Connection, sql: &str) -> bool {
    let Ok(mut explain) = conn.prepare(&format!("EXPLAIN {sql}")) else {
        return false;
    };
    let Ok(mut rows) = explain.query([]) else {
        return false;
    };
    while let Ok(Some(row)) = rows.next() {
        if row.get_ref(1).ok().and_then(|v| v.as_str().ok()) == Some("Vacuum") {
            return true;
        }
    }
    false
}

enum Failure {
    Sqlite(rusqlite::Error),
    TooBig,
    Empty,
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sqlite(e)
    }
}

fn run_statement<'a>(
    conn: &'a Connection,
    guard: &Guard,
    sql: &'a str,
    params: &Params,
    mut prepared: Option<&mut Prepared<'a>>,
) -> Result<StatementResult, Failure> {
    if let Some(stmt) = prepared.as_deref_mut().and_then(|p| p.find(sql)) {
        return run_prepared(conn, stmt, params);
    }
    let mut stmt = match conn.prepare_cached(sql) {
        Ok(stmt) => stmt,
        // rusqlite prepares what follows a first statement to tell whether
        // it is one, and its error there (a table the first creates) would
        // hide why the text cannot run.
        Err(_) if crate::several::several(sql) => {
            return Err(rusqlite::Error::MultipleStatement.into())
        }
        Err(e) => return Err(e.into()),
    };
    let session_only = guard.take_session_only();
    let out = run_prepared(conn, &mut stmt, params);
    if session_only {
        // Allowed in a session only: a batch must not find it cached.
        stmt.discard();
    } else if let Some(p) = prepared {
        if p.held.len() < HELD {
            p.held.push((sql, stmt));
        }
    }
    out
}

fn run_prepared(
    conn: &Connection,
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: &Params,
) -> Result<StatementResult, Failure> {
    if values::is_empty(stmt) {
        return Err(Failure::Empty);
    }
    values::bind(stmt, params)?;
    values::run(conn, stmt, MAX_RESULT_BYTES)?.ok_or(Failure::TooBig)
}

/// `last_insert_rowid()` carries from statement to statement within a
/// batch, but must not leak from one caller's batch into the next one's
/// receipt: each batch starts from 0.
pub fn reset_last_insert_rowid(conn: &Connection) {
    // SAFETY: the handle is valid for the life of `conn`, which is used by
    // this thread only (the connection is not Sync).
    unsafe { rusqlite::ffi::sqlite3_set_last_insert_rowid(conn.handle(), 0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scribe_protocol::{Statement, Value};

    fn conn() -> (Connection, Guard) {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
            .unwrap();
        let g = Guard::install(&mut c).unwrap();
        (c, g)
    }

    fn run(c: &(Connection, Guard), b: &Batch) -> Result<Vec<StatementResult>, WriteError> {
        run_batch(&c.0, &c.1, b, &mut Prepared::default())
    }

    #[test]
    fn a_savepoint_a_session_ran_is_not_found_cached_by_a_batch() {
        let c = conn();
        c.1.trusted(|| c.0.execute_batch("BEGIN")).unwrap();
        c.1.session(true);
        let sp = Statement::new("SAVEPOINT s");
        run_one(&c.0, &c.1, 0, &sp, None).unwrap();
        c.1.session(false);
        c.1.trusted(|| c.0.execute_batch("ROLLBACK")).unwrap();
        let again = run(&c, &Batch::one(sp)).unwrap_err();
        assert!(matches!(again, WriteError::Refused { .. }), "{again:?}");
    }

    #[test]
    fn a_statement_kept_for_a_group_runs_again_with_its_own_values() {
        let c = conn();
        let insert = |v: &str| {
            Batch::one(
                Statement::new("INSERT INTO t(v) VALUES (?1) RETURNING v").params(vec![v.into()]),
            )
        };
        let alter = Batch::one(Statement::new("ALTER TABLE t ADD COLUMN w TEXT"));
        let batches = [insert("a"), insert("b"), alter, insert("c")];
        let mut prepared = Prepared::default();
        let mut seen = Vec::new();
        for b in &batches {
            let r = run_batch(&c.0, &c.1, b, &mut prepared).unwrap();
            seen.extend(r[0].rows.iter().map(|row| row[0].clone()));
        }
        // Kept once, run three times (across a change of the table too).
        assert_eq!(prepared.held.len(), 2, "the insert and the ALTER");
        assert_eq!(seen, vec!["a".into(), "b".into(), "c".into()]);
        drop(prepared);
        let n: i64 =
            c.0.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn returning_rows_and_counts() {
        let c = conn();
        let b = Batch::new(vec![
            Statement::new("INSERT INTO t(v) VALUES (?1), (?2) RETURNING id, v")
                .params(vec!["a".into(), "b".into()]),
            Statement::new("CREATE TABLE u(x)"),
            Statement::new("UPDATE t SET v = :v WHERE id = 1")
                .named(vec![("v".into(), Value::Null)])
                .expect_rows(1),
        ]);
        let r = run(&c, &b).unwrap();
        assert_eq!(r[0].rows_affected, 2);
        assert_eq!(r[0].columns, vec!["id", "v"]);
        assert_eq!(
            r[0].rows[1],
            vec![Value::Integer(2), Value::Text("b".into())]
        );
        assert_eq!(r[1].rows_affected, 0, "DDL changes no rows");
        assert_eq!(r[2].rows_affected, 1);
    }

    #[test]
    fn expectation_and_parameter_errors_are_categorized() {
        let c = conn();
        let conflict = run(
            &c,
            &Batch::one(Statement::new("UPDATE t SET v='x' WHERE id=42").expect_rows(1)),
        )
        .unwrap_err();
        assert!(matches!(
            conflict,
            WriteError::Conflict {
                statement: Some(0),
                ..
            }
        ));
        let count = run(
            &c,
            &Batch::one(Statement::new("INSERT INTO t(v) VALUES (?)")),
        )
        .unwrap_err();
        assert!(
            matches!(
                count,
                WriteError::Sql {
                    code: SQLITE_RANGE,
                    ..
                }
            ),
            "{count:?}"
        );
        let two = run(&c, &Batch::one(Statement::new("SELECT 1; SELECT 2"))).unwrap_err();
        assert!(matches!(
            two,
            WriteError::Sql {
                code: SQLITE_ERROR,
                ..
            }
        ));
    }

    #[test]
    fn constraint_errors_carry_the_extended_code() {
        let c = conn();
        let b = Batch::new(vec![
            Statement::new("INSERT INTO t(id, v) VALUES (1, 'a')"),
            Statement::new("INSERT INTO t(id, v) VALUES (1, 'b')"),
        ]);
        match run(&c, &b).unwrap_err() {
            WriteError::Sql {
                statement, code, ..
            } => {
                assert_eq!(statement, Some(1));
                assert_eq!(code, 1555, "SQLITE_CONSTRAINT_PRIMARYKEY");
            }
            other => panic!("{other:?}"),
        }
    }
}
