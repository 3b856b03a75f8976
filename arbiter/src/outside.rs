//! Changes made to the database file by another connection: a restore
//! through SQLite's backup API into the live file, or a program writing it
//! directly.
//!
//! The arbiter keeps the key table's index in memory (see `keyindex`),
//! right only while it is the table's one writer. A restore put back an
//! older table under it: the index named rows that were gone, every group
//! then failed its check (a panic in debug builds, every caller waiting
//! out its timeout), and a release build would have staged rows under
//! rowids the table held. So each transaction, once begun, asks SQLite
//! whether another connection committed since (`PRAGMA data_version`;
//! one cheap statement a group), and when one did and the key table's
//! newest row is not the one the index knows, files the table again.
//! (`data_version` also moves when the checkpointer restarts the WAL:
//! the newest row tells those apart from real changes at no cost.)

use scribe_protocol::WriteError;

use crate::group::{commit_error, Session};

impl Session {
    /// Files the key table again if another connection changed it since
    /// this one last looked. Call inside a transaction just begun.
    ///
    /// # Errors
    ///
    /// SQLite's error (the caller rolls back).
    pub fn notice_outside_changes(&self) -> Result<(), WriteError> {
        let version: i64 = self
            .guard
            .trusted(|| {
                self.conn
                    .prepare_cached(&self.own.data_version)?
                    .query_row([], |r| r.get(0))
            })
            .map_err(commit_error)?;
        if version == self.data_version.replace(version) {
            return Ok(());
        }
        let newest: Option<i64> = self
            .guard
            .trusted(|| {
                self.conn
                    .prepare_cached(&self.own.newest_request)?
                    .query_row([], |r| r.get(0))
            })
            .map_err(commit_error)?;
        if newest == self.keys.newest() {
            return Ok(());
        }
        tracing::warn!(
            known = ?self.keys.newest(),
            found = ?newest,
            "the key table changed outside the arbiter (a restore into the live file, or a \
             program writing it directly): filing its keys again"
        );
        self.guard
            .trusted(|| crate::requests::reload(&self.conn, &self.own, &self.keys))
            .map_err(commit_error)
    }
}
