//! The error a write (or any call) ends in, as it travels on the wire.
//!
//! It carries codes and strings only, never a `rusqlite::Error` or an
//! `io::Error`: the two sides share no types but these.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::category::Category;

/// A categorized failure reported by the arbiter. The variant order is part
/// of the wire format; never reorder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WriteError {
    /// The arbiter cannot serve now (reason attached).
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The outcome is unknown: the deadline passed, or the connection was
    /// lost after the request was sent. A write may or may not have
    /// committed; only a retry with the same idempotency key is safe.
    Timeout {
        /// What timed out.
        message: String,
    },
    /// The arbiter cannot take this now: its write queue is full, or it
    /// serves as many connections as it may.
    Overloaded {
        /// Which capacity is full, and its size.
        reason: String,
        /// A hint, from recent commit times, of when a retry may succeed.
        retry_after_ms: u64,
    },
    /// The arbiter is draining before it exits; retry after it restarts.
    ShuttingDown,
    /// An expectation was not met (`expect_rows`, idempotency key reuse);
    /// the batch was rolled back and nothing was written.
    Conflict {
        /// Index of the statement whose expectation failed, if one did.
        statement: Option<u32>,
        /// What was expected and what happened.
        message: String,
    },
    /// SQLite rejected a statement; the batch was rolled back.
    Sql {
        /// Index (from 0) of the failing statement, or `None` when the
        /// commit itself failed.
        statement: Option<u32>,
        /// SQLite's extended result code.
        code: i32,
        /// SQLite's message.
        message: String,
    },
    /// The request is not allowed (a rule or a limit); nothing ran.
    Refused {
        /// Index (from 0) of the statement refused, when one was.
        statement: Option<u32>,
        /// Which rule or limit, and its value.
        reason: String,
    },
    /// Version mismatch or malformed exchange.
    Protocol {
        /// What went wrong, naming both versions on a mismatch.
        message: String,
    },
    /// The write session this call belongs to has ended without a commit:
    /// its lease lapsed, its connection ended, or the arbiter stopped. It
    /// was rolled back; nothing of it was written.
    Expired {
        /// Why it ended.
        reason: String,
    },
    /// A statement of a write session failed, and SQLite rolled the whole
    /// transaction back with it (`INSERT OR ROLLBACK`, a trigger's
    /// `RAISE(ROLLBACK, ...)`, a full disk): the session is over and
    /// nothing of it was written. The statement's own error, as `Sql`
    /// (which category it is); running the transaction again meets it
    /// again unless something changes.
    RolledBack {
        /// Index (from 0) of the failing statement in its call.
        statement: Option<u32>,
        /// SQLite's extended result code.
        code: i32,
        /// SQLite's message.
        message: String,
    },
    /// The request waited for the writer as long as its own `wait_ms`
    /// allowed (behind another connection's write session, a migration,
    /// or a backlog) and never started: nothing of it was written. The
    /// analogue of SQLite's `SQLITE_BUSY` after its busy timeout; a
    /// retry may succeed.
    Busy {
        /// The wait it allowed, milliseconds.
        waited_ms: u64,
        /// What held the writer meanwhile.
        behind: String,
    },
}

impl WriteError {
    /// The category of this error.
    pub fn category(&self) -> Category {
        match self {
            WriteError::Unavailable { .. } => Category::Unavailable,
            WriteError::Timeout { .. } => Category::Timeout,
            WriteError::Overloaded { .. } | WriteError::Busy { .. } => Category::Overloaded,
            WriteError::ShuttingDown => Category::ShuttingDown,
            WriteError::Conflict { .. } => Category::Conflict,
            WriteError::Sql { .. } | WriteError::RolledBack { .. } => Category::Sql,
            WriteError::Refused { .. } => Category::Refused,
            WriteError::Protocol { .. } => Category::Protocol,
            WriteError::Expired { .. } => Category::Expired,
        }
    }
}

/// What a failed call undid, which its message ends by saying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undone {
    /// The whole call: a batch, or one migration ("nothing was written").
    Call,
    /// Only the failing statement: a write session's `exec` or
    /// `exec_many`, whose earlier statements stand and whose session goes
    /// on (SQLite's own statement rollback).
    Statement,
}

/// How an `Overloaded` reason begins when another process held the
/// database file's write lock past the writer's busy timeout: over JSON it
/// carries SQLite's own code and words (`database is locked`), which the
/// Python drop-in raises as sqlite3 would.
pub const OUTSIDE_WRITER: &str = "another process holds the database file's write lock";

/// How the message of a failure that undid its whole call ends.
const NOTHING: &str = "; nothing was written";

/// How a write session statement's SQLite message ends when the
/// statement failed after changing rows that SQLite kept (`ON CONFLICT
/// FAIL`, a trigger's `RAISE(FAIL)`): "wrote nothing" would be false, and
/// a caller that ran it again would apply those rows twice.
const KEPT: &str = " (SQLite's FAIL keeps them)";
/// Where [`KEPT`]'s addition begins.
const KEPT_FROM: &str = "; it changed ";

/// How the note the arbiter adds to a failed migration's SQLite message
/// begins (it ends with `]`): it says what stays applied, so the message
/// does not end "nothing was written", and `sqlite_message` leaves it out.
pub const MIGRATION_NOTE: &str = " [migration ";

/// The migration note at the end of `message`, where it begins.
fn migration_note(message: &str) -> Option<usize> {
    message
        .ends_with(']')
        .then(|| message.rfind(MIGRATION_NOTE))
        .flatten()
}

impl WriteError {
    /// This failure of a write session's statement (SQL, or a conflict),
    /// saying that the `rows` rows it changed before it failed stand.
    #[must_use]
    pub fn with_rows_kept(mut self, rows: u64) -> WriteError {
        if let WriteError::Sql { message, .. } | WriteError::Conflict { message, .. } = &mut self {
            let (s, verb) = if rows == 1 {
                ("", "stands")
            } else {
                ("s", "stand")
            };
            message.push_str(&format!(
                "{KEPT_FROM}{rows} row{s} before it failed, which {verb}{KEPT}"
            ));
        }
        self
    }

    /// SQLite's own words in an error's `message`, without what
    /// [`WriteError::with_rows_kept`] added.
    pub fn sqlite_words(message: &str) -> &str {
        if let Some(at) = migration_note(message) {
            return &message[..at];
        }
        match message.strip_suffix(KEPT) {
            Some(head) => head.rfind(KEPT_FROM).map_or(message, |at| &message[..at]),
            None => message,
        }
    }

    /// The message of this error, for a call that undid `undone`. `Display`
    /// words it for a whole call; a write session's statement is worded
    /// so that nobody runs again what stands ("nothing was written" would
    /// invite it, and a commit would then apply it twice).
    pub fn message(&self, undone: Undone) -> String {
        let text = self.to_string();
        // A session's failed commit (`Sql` with no statement) ended it.
        let one_statement = matches!(
            self,
            WriteError::Sql {
                statement: Some(_),
                ..
            } | WriteError::Conflict { .. }
                | WriteError::Refused { .. }
        );
        // Refused or in conflict with no statement named: the whole call.
        let what = match self {
            WriteError::Conflict {
                statement: None, ..
            }
            | WriteError::Refused {
                statement: None, ..
            } => "call",
            _ => "statement",
        };
        if text.ends_with(KEPT) {
            return format!(
                "{text}; what ran before it in the transaction stands too, and the \
                 transaction goes on"
            );
        }
        match text.strip_suffix(NOTHING) {
            Some(head) if undone == Undone::Statement && one_statement => format!(
                "{head}; this {what} wrote nothing, what ran before it in the transaction \
                 stands, and the transaction goes on"
            ),
            _ => text,
        }
    }
}

/// Ends a failed statement's message: nothing was written, unless SQLite
/// kept rows it changed (see [`WriteError::with_rows_kept`]).
fn nothing_unless_kept(f: &mut fmt::Formatter<'_>, message: &str) -> fmt::Result {
    if message.ends_with(KEPT) || migration_note(message).is_some() {
        Ok(())
    } else {
        f.write_str(NOTHING)
    }
}

/// Messages count statements from 1, as a person does (the `statement`
/// fields count from 0, as the requests' arrays do).
impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Unavailable { reason } => write!(f, "arbiter unavailable: {reason}"),
            WriteError::Timeout { message } => f.write_str(message),
            WriteError::Overloaded {
                reason,
                retry_after_ms,
            } => write!(
                f,
                "arbiter overloaded: {reason}; retry after {retry_after_ms} ms"
            ),
            WriteError::ShuttingDown => {
                write!(f, "arbiter is shutting down; retry once it has restarted")
            }
            WriteError::Conflict {
                statement: Some(i),
                message,
            } => {
                write!(f, "conflict in statement {}: {message}", i + 1)?;
                nothing_unless_kept(f, message)
            }
            WriteError::Conflict {
                statement: None,
                message,
            } => write!(f, "conflict: {message}; nothing was written"),
            WriteError::Sql {
                statement: Some(i),
                code,
                message,
            } => {
                write!(
                    f,
                    "SQL error in statement {} (SQLite code {code}): {message}",
                    i + 1
                )?;
                nothing_unless_kept(f, message)
            }
            WriteError::Sql {
                statement: None,
                code,
                message,
            } => write!(
                f,
                "commit failed (SQLite code {code}): {message}; nothing was written"
            ),
            WriteError::Refused {
                statement: Some(i),
                reason,
            } => {
                write!(f, "refused: statement {}: {reason}", i + 1)?;
                nothing_unless_kept(f, reason)
            }
            WriteError::Refused {
                statement: None,
                reason,
            } => {
                write!(f, "refused: {reason}")?;
                nothing_unless_kept(f, reason)
            }
            WriteError::Protocol { message } => write!(f, "protocol error: {message}"),
            WriteError::RolledBack {
                statement,
                code,
                message,
            } => {
                f.write_str("SQL error")?;
                if let Some(i) = statement {
                    write!(f, " in statement {}", i + 1)?;
                }
                write!(
                    f,
                    " (SQLite code {code}): {message}; SQLite rolled the whole transaction \
                     back and nothing of it was written"
                )
            }
            WriteError::Expired { reason } => write!(
                f,
                "write session ended: {reason}; it was rolled back and nothing of it was \
                 written (run the whole transaction again)"
            ),
            WriteError::Busy { waited_ms, behind } => write!(
                f,
                "database is busy: the writer served {behind} for all of this request's \
                 wait ({waited_ms} ms), and it did not start; nothing of it was written"
            ),
        }
    }
}

impl std::error::Error for WriteError {}

#[cfg(test)]
#[path = "wire_error_tests.rs"]
mod tests;
