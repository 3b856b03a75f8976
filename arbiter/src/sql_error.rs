//! A statement's failure as the wire error it is answered with: SQLite's
//! code and words, or `Overloaded` when the file's lock is another
//! process's.

use scribe_protocol::WriteError;

use crate::exec::{SQLITE_ERROR, SQLITE_RANGE};

/// The file is locked by another connection.
const SQLITE_BUSY: i32 = 5;

/// Maps a rusqlite error to the wire error of statement `index`.
/// This is the one place SQLite errors are classified.
pub fn sql_error(index: u32, e: rusqlite::Error) -> WriteError {
    let (code, message) = match e {
        rusqlite::Error::SqliteFailure(err, msg) => {
            (err.extended_code, msg.unwrap_or_else(|| err.to_string()))
        }
        // A statement SQLite could not prepare: its own words (the offset
        // would only repeat what "near ..." says).
        rusqlite::Error::SqlInputError { error, msg, .. } => (error.extended_code, msg),
        rusqlite::Error::MultipleStatement => (
            SQLITE_ERROR,
            "more than one SQL statement in one statement; send each as its own statement \
             (`scribe exec --file` splits a script)"
                .to_owned(),
        ),
        rusqlite::Error::InvalidParameterCount(given, expected) => (
            SQLITE_RANGE,
            format!("statement takes {expected} parameter(s) but {given} were given"),
        ),
        rusqlite::Error::InvalidParameterName(name) => (SQLITE_RANGE, name),
        other => (SQLITE_ERROR, other.to_string()),
    };
    if code & 0xff == SQLITE_BUSY {
        return outside_writer();
    }
    WriteError::Sql {
        statement: Some(index),
        code,
        message,
    }
}

/// `SQLITE_BUSY` on the writer, whose connections are the only ones that
/// write through scribe: another process holds the file's write lock,
/// writing it directly, and SQLite's busy timeout passed. A passing state,
/// like a full queue (it read "commit failed (SQLite code 5): database is
/// locked", an SQL error nobody retried).
fn outside_writer() -> WriteError {
    WriteError::Overloaded {
        reason: format!(
            "{} (it writes the file directly, not through scribe, or recovers it after a \
             crash) and kept it past {} s",
            scribe_protocol::wire_error::OUTSIDE_WRITER,
            crate::config::BUSY_TIMEOUT.as_secs()
        ),
        retry_after_ms: 1000,
    }
}
