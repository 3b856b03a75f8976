//! This crate's error.

use std::path::PathBuf;

/// Errors of path resolution.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Neither `--db` nor `SCRIBE_DB` named a database.
    #[error("no database given: pass --db PATH or set SCRIBE_DB")]
    NoDatabase,
    /// The database's path names a directory.
    #[error("{0} is a directory: --db names a database file (in it, say {0}/app.db)")]
    Directory(PathBuf),
    /// The current directory could not be read to make the path absolute.
    #[error("cannot resolve {path}: {source}")]
    Resolve {
        /// The path as given.
        path: PathBuf,
        /// The underlying failure.
        source: std::io::Error,
    },
    /// The lock file could not be opened, locked or written.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying failure.
        source: std::io::Error,
    },
}
