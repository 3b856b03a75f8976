//! This crate's error.

use std::path::PathBuf;

/// Why the arbiter could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The paths could not be resolved.
    #[error(transparent)]
    Paths(#[from] scribe_protocol::Error),
    /// The directory meant to hold the database does not exist.
    #[error("database directory {0} does not exist")]
    NoDirectory(PathBuf),
    /// The directory of the database is not writable.
    #[error("database directory {0} is not writable")]
    DirectoryNotWritable(PathBuf),
    /// SQLite refused to open or prepare the database.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// An operator setting (`--pragma`, `--load-extension`) failed.
    #[error("cannot apply {what}: {source}")]
    Setting {
        /// The setting.
        what: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The database would not switch to WAL.
    #[error("database {path} stayed in journal mode {mode:?}; scribe needs WAL")]
    NotWal {
        /// The database file.
        path: PathBuf,
        /// The mode SQLite reported.
        mode: String,
    },
    /// The database file has more than one name (hard links). SQLite
    /// keeps the WAL beside the name a file is opened by, so commits made
    /// through one name are invisible through another, and a start under
    /// the other name after a crash would write over them (the message is
    /// `names::several_names_message`).
    #[error("{0}")]
    SeveralNames(String),
    /// The database file is not the one whose WAL, with commits in it,
    /// lies beside it (a backup renamed over a killed arbiter's file; see
    /// `walhold::refuse_replaced`).
    #[error("{0}")]
    Replaced(String),
    /// The database was written by a newer scribe.
    #[error(
        "database {path} was written by a newer scribe (scribe's tables are at version \
         {found}; this arbiter knows versions up to {known}): run the newer scribed"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The newest version this release knows.
        known: i64,
    },
    /// Creating or upgrading scribe's own tables failed; nothing changed.
    #[error(
        "cannot create or upgrade scribe's tables in {path} (step from version {from}): {source}"
    )]
    Schema {
        /// The database file.
        path: PathBuf,
        /// The version the failing step started from (-1: reading or
        /// recording the version).
        from: i64,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The operator's migrations (`--migrations DIR`) could not be read
    /// or applied; the arbiter does not start.
    #[error("migrations from {dir}: {message}")]
    Migrations {
        /// The directory.
        dir: PathBuf,
        /// What went wrong (the file, the version, the statement).
        message: String,
        /// Another process's lock stood in the way past the busy timeout
        /// (it passes; see [`Error::repeats`]).
        busy: bool,
    },
    /// The socket could not be bound.
    #[error("cannot bind socket {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The underlying failure.
        source: std::io::Error,
    },
    /// Another I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying failure.
        source: std::io::Error,
    },
}

impl Error {
    /// True for a start's failure that the next start of this database
    /// would meet again whoever starts it, as long as the database, its
    /// settings and the migrations stay as they are: auto-starters hold
    /// back after it (see `scribe_protocol::failed_start`). A socket that
    /// cannot be bound is not one: it depends on the `--socket` given;
    /// nor is another process's lock on the file.
    pub fn repeats(&self) -> bool {
        match self {
            Error::Open { source, .. }
            | Error::Setting { source, .. }
            | Error::Schema { source, .. } => !is_busy(source),
            Error::Migrations { busy, .. } => !busy,
            Error::NotWal { .. }
            | Error::NewerSchema { .. }
            | Error::SeveralNames(_)
            | Error::Replaced(_) => true,
            _ => false,
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Whether SQLite's `e` is another connection's lock (SQLITE_BUSY or
/// SQLITE_LOCKED): it passes once that lock is let go.
pub fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}
