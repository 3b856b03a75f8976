//! This crate's error.

use std::path::PathBuf;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database file does not exist (and could not be created by the
    /// arbiter).
    #[error("database {path} does not exist{}", why.as_ref().map(|w| format!(": {w}")).unwrap_or_default())]
    NotFound {
        /// The database file.
        path: PathBuf,
        /// Why the arbiter could not create it, when it was asked.
        why: Option<String>,
    },
    /// The database file has more than one name (hard links), and no
    /// arbiter serves it under this one: reads through this name may miss
    /// the commits in another name's WAL (SQLite keeps the WAL by name).
    #[error("{message}")]
    OtherName {
        /// The name given.
        path: PathBuf,
        /// Why, for people.
        message: String,
    },
    /// `wait_for` gave up: the sequence number did not become visible.
    #[error("commit {seq} not visible within {waited:.0?} (the latest visible is {seen})")]
    Timeout {
        /// The sequence number waited for.
        seq: u64,
        /// The latest one seen.
        seen: u64,
        /// How long it waited.
        waited: std::time::Duration,
    },
    /// The query's text holds no statement.
    #[error("the query holds no SQL (it is empty, or only comments)")]
    Empty,
    /// SQLite refused the query or the open.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl Error {
    /// SQLite's extended result code, when SQLite produced the error.
    pub fn sqlite_code(&self) -> Option<i32> {
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => Some(e.extended_code),
            _ => None,
        }
    }
}
