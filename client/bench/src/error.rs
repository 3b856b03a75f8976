//! This crate's error.

use scribe_protocol::WriteError;

/// Why a bench or demo run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The arbiter answered with a categorized error (its exit code).
    #[error(transparent)]
    Scribe(#[from] WriteError),
    /// A run could not be set up, a process failed, or a check did not
    /// hold.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Error::Failed(s)
    }
}
