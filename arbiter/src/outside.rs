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
//! newest row is not the one the index knows (its rowid and its keys:
//! two histories restored in turn can hold different rows under one
//! rowid), files the table again. (`data_version` also moves when the
//! checkpointer restarts the WAL: the newest row tells those apart from
//! real changes, without reading the whole table.)

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
        let newest: Option<(i64, Vec<u8>)> = self
            .guard
            .trusted(|| {
                self.conn
                    .prepare_cached(&self.own.newest_request)?
                    .query_row([], |r| {
                        // Not a blob (damaged): the reload says so.
                        let keys = match r.get_ref(1)? {
                            rusqlite::types::ValueRef::Blob(b) => b.to_vec(),
                            _ => Vec::new(),
                        };
                        Ok(Some((r.get(0)?, keys)))
                    })
                    .or_else(|e| match e {
                        rusqlite::Error::QueryReturnedNoRows => Ok(None),
                        e => Err(e),
                    })
            })
            .map_err(commit_error)?;
        if self.index_knows(newest.as_ref()) {
            return Ok(());
        }
        tracing::warn!(
            known = ?self.keys.newest(),
            found = ?newest.as_ref().map(|(id, _)| id),
            "the key table changed outside the arbiter (a restore into the live file, or a \
             program writing it directly): filing its keys again"
        );
        self.guard
            .trusted(|| crate::requests::reload(&self.conn, &self.own, &self.keys))
            .map_err(commit_error)
    }
}

impl Session {
    /// Whether the index's newest row is `newest` (rowid and keys), as the
    /// table holds it now.
    fn index_knows(&self, newest: Option<&(i64, Vec<u8>)>) -> bool {
        let Some((id, blob)) = newest else {
            return self.keys.newest().is_none();
        };
        if self.keys.newest() != Some(*id) {
            return false;
        }
        let Ok(entries) = crate::keyrecord::decode_keys(blob) else {
            return false;
        };
        let mut found: Vec<u64> = entries
            .iter()
            .map(|e| self.keys.hash(e.key.as_bytes()))
            .collect();
        let mut known = self.keys.row(*id);
        found.sort_unstable();
        known.sort_unstable();
        found == known
    }
}
