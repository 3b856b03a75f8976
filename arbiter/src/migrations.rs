//! Applying the program's schema migrations on the writer connection:
//! at open (`--migrations DIR`) and when a caller asks (`migrate`).
//!
//! Everything is checked before anything runs: the list has no gap, every
//! migration the database already has carries the same checksum, and the
//! list reaches back to where the database is. Then each missing one runs
//! in its own transaction together with its record and a new seq; one
//! that fails is rolled back whole and names its version and statement.
//! A migration that asks for `foreign_keys` off gets it set off before its
//! transaction and `foreign_key_check` before its commit; any other runs
//! with the arbiter's setting. Its statements pass the same guardrails as
//! a batch's.

use std::time::Instant;

use rusqlite::fallible_iterator::FallibleIterator as _;
use rusqlite::OptionalExtension as _;
use scribe_protocol::{MigrateReport, Migration, MigrationRecord, WriteError};

use crate::group::{commit_error, Session};

use scribe_protocol::migration::BUDGET as MIGRATION_BUDGET;

/// The migrations `session`'s database has, in version order.
///
/// # Errors
///
/// SQLite's error.
pub fn history(session: &Session) -> Result<Vec<MigrationRecord>, WriteError> {
    session
        .guard
        .trusted(|| {
            let mut st = session.conn.prepare_cached(&session.own.migrations)?;
            let rows = st.query_map([], |r| {
                Ok(MigrationRecord {
                    version: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                    name: r.get(1)?,
                    checksum: r.get(2)?,
                    applied_at_ms: r.get(3)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(commit_error)
}

/// Brings the database up to the last of `list`; `on_commit` is told the
/// seq of each migration's commit.
///
/// # Errors
///
/// `Refused` for a list with a gap (in itself or after the database's
/// version); `Conflict` for an applied migration whose text changed;
/// the failing migration's error (its version, name and statement).
pub fn apply(
    session: &Session,
    list: &[Migration],
    mut on_commit: impl FnMut(u64),
) -> Result<MigrateReport, WriteError> {
    scribe_protocol::migration::check_list(list)?;
    let done = history(session)?;
    let before = done.last().map_or(0, |r| r.version);
    let last = list.last().map_or(0, |m| m.version);
    for m in list.iter().filter(|m| m.version <= before) {
        match done.iter().find(|r| r.version == m.version) {
            Some(r) if r.checksum == m.checksum() => {}
            Some(r) => {
                return Err(WriteError::Conflict {
                    statement: None,
                    message: format!(
                        "migration {} ({}) differs from the one applied as {} ({}) (checksum \
                         {} there, {} here): an applied migration must not change; add a new \
                         one instead",
                        m.version,
                        m.name,
                        r.version,
                        r.name,
                        r.checksum,
                        m.checksum()
                    ),
                })
            }
            None => {
                return Err(WriteError::Refused {
                    statement: None,
                    reason: format!(
                        "the database is at version {before} but has no record of migration \
                         {} ({})",
                        m.version, m.name
                    ),
                })
            }
        }
    }
    for m in list.iter().filter(|m| m.version > before) {
        scribe_protocol::migration::check_text(m)?;
    }
    let first = list.first().map_or(1, |m| m.version);
    if first > before + 1 {
        return Err(WriteError::Refused {
            statement: None,
            reason: format!(
                "the database is at version {before} and these migrations start at {first}: {} \
                 missing",
                match (before + 1, first - 1) {
                    (a, b) if a == b => format!("version {a} is"),
                    (a, b) => format!("versions {a} to {b} are"),
                }
            ),
        });
    }
    let mut report = MigrateReport {
        before,
        after: before,
        applied: Vec::new(),
        newer: before > last,
        // The schema as reported is there as of the last commit: a caller
        // with nothing left to apply (another applied them, or it waited
        // for another's) waits for this seq to read it.
        seq: session.next_seq().map_or(0, |next| next.saturating_sub(1)),
    };
    for m in list.iter().filter(|m| m.version > before) {
        // A stop signal while the arbiter starts (see `early`): no next
        // migration (one running is interrupted).
        if crate::early::received().is_some() {
            return Err(WriteError::ShuttingDown);
        }
        let seq = one(session, m).map_err(|e| explain(e, m, &report))?;
        on_commit(seq);
        report.applied.push(m.version);
        report.after = m.version;
        report.seq = seq;
        tracing::info!(version = m.version, name = %m.name, seq, "migration applied");
    }
    Ok(report)
}

/// Adds which migration failed, and what stays applied, to its error.
fn explain(e: WriteError, m: &Migration, so_far: &MigrateReport) -> WriteError {
    let note = scribe_protocol::wire_error::MIGRATION_NOTE;
    let whose = format!(
        "{note}{} ({}) was rolled back whole, nothing of it written; the database is at \
         version {}{}]",
        m.version,
        m.name,
        so_far.after,
        if so_far.applied.is_empty() {
            String::new()
        } else {
            format!(
                ", where the migrations this call applied before it stay ({})",
                so_far
                    .applied
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    match e {
        WriteError::Sql {
            statement,
            code,
            message,
        } => WriteError::Sql {
            statement,
            code,
            message: format!("{message}{whose}"),
        },
        WriteError::Refused { statement, reason } => WriteError::Refused {
            statement,
            // A write session is no way out here (helper 93).
            reason: format!(
                "{}{whose}",
                reason.replace(
                    crate::guard::TRANSACTION_RULE,
                    "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE) is not \
                     allowed in a migration: each runs in one transaction of its own, with its \
                     record, applied whole or not at all"
                )
            ),
        },
        other => other,
    }
}

/// Runs one migration in its own transaction; returns its commit's seq.
fn one(session: &Session, m: &Migration) -> Result<u64, WriteError> {
    // Off when it asks, the arbiter's setting otherwise (a write before it
    // may have left either on the connection).
    session.foreign_keys_for(m.wants_foreign_keys_off().then_some(false))?;
    let out = transaction(session, m);
    if out.is_err() {
        session.reset();
    }
    out
}

fn transaction(session: &Session, m: &Migration) -> Result<u64, WriteError> {
    session.own(&session.own.begin).map_err(commit_error)?;
    session.notice_outside_changes()?;
    let (ran, cut) = session
        .budget
        .run_until(Instant::now() + MIGRATION_BUDGET, || {
            script(session, &m.sql)
        });
    if cut {
        return Err(WriteError::Refused {
            statement: None,
            reason: format!(
                "it ran past {} s (MIGRATION_BUDGET) and was interrupted",
                MIGRATION_BUDGET.as_secs()
            ),
        });
    }
    ran?;
    if m.wants_foreign_keys_off() {
        check_foreign_keys(session)?;
    }
    let seq = session.bump_seq()?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    session
        .guard
        .trusted(|| {
            session
                .conn
                .prepare_cached(&session.own.record_migration)?
                .execute(rusqlite::params![
                    m.version as i64,
                    m.name,
                    m.checksum(),
                    now_ms
                ])
        })
        .map_err(commit_error)?;
    if !session.file_in_place() {
        return Err(crate::group::moved(&session.file.0));
    }
    session.own(&session.own.commit).map_err(commit_error)?;
    Ok(seq)
}

/// Runs every statement of `sql`, through the guardrails.
fn script(session: &Session, sql: &str) -> Result<(), WriteError> {
    let mut batch = rusqlite::Batch::new(&session.conn, sql);
    let mut index = 0u32;
    loop {
        let next = batch.next().map_err(|e| failed(session, index, e))?;
        let Some(mut st) = next else {
            return Ok(());
        };
        let mut rows = st.raw_query();
        while rows
            .next()
            .map_err(|e| failed(session, index, e))?
            .is_some()
        {}
        index += 1;
    }
}

fn failed(session: &Session, index: u32, e: rusqlite::Error) -> WriteError {
    match session.guard.take_denial() {
        Some(reason) => WriteError::Refused {
            statement: Some(index),
            reason,
        },
        None => crate::exec::sql_error(index, e),
    }
}

/// A table rebuild with foreign keys off must leave none dangling.
fn check_foreign_keys(session: &Session) -> Result<(), WriteError> {
    let first: Option<(String, Option<i64>, String)> = session
        .guard
        .trusted(|| {
            session
                .conn
                .query_row("PRAGMA foreign_key_check", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
        })
        .map_err(commit_error)?;
    match first {
        None => Ok(()),
        Some((table, rowid, parent)) => Err(WriteError::Sql {
            statement: None,
            code: rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY,
            message: format!(
                "foreign_key_check after the migration: a row of {table} (rowid {}) points at \
                 no row of {parent}",
                rowid.map_or("none".into(), |r| r.to_string())
            ),
        }),
    }
}
