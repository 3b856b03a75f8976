//! The commit sequence: each commit's `seq`, read and written inside its
//! own transaction.
//!
//! Readers see the latest as `SELECT seq FROM _scribe_seq` (schema 3): the
//! greater of `_scribe_meta`'s `seq` row and the newest key row's `seq`. A
//! commit that records idempotency keys carries its seq in its row of keys
//! only (one page fewer to write and sync); any other commit writes it to
//! `_scribe_meta`, and a deletion of keys folds the newest row's seq into
//! `_scribe_meta` first (`requests::keep_seq`).

use scribe_protocol::WriteError;

use crate::group::{commit_error, Session};

impl Session {
    /// The next commit's seq, read inside the open transaction: one past
    /// the greater of `_scribe_meta`'s and the newest key row's (the
    /// readers' `_scribe_seq` view). Nothing is written: a commit that
    /// records a key carries the seq in its row of keys, any other calls
    /// [`Session::write_seq`] before it commits.
    ///
    /// # Errors
    ///
    /// SQLite's error, or the sequence row missing.
    pub fn next_seq(&self) -> Result<u64, WriteError> {
        let (meta, newest): (Option<i64>, Option<i64>) = self
            .guard
            .trusted(|| {
                self.conn
                    .prepare_cached(&self.own.read_seq)?
                    .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            })
            .map_err(commit_error)?;
        let Some(meta) = meta else {
            return Err(seq_row_missing());
        };
        Ok(meta.max(newest.unwrap_or(0)).max(0) as u64 + 1)
    }

    /// Stores `seq` in `_scribe_meta` (a commit that records no key).
    ///
    /// # Errors
    ///
    /// SQLite's error, or the sequence row missing.
    pub fn write_seq(&self, seq: u64) -> Result<(), WriteError> {
        let changed = self
            .guard
            .trusted(|| {
                self.conn
                    .prepare_cached(&self.own.write_seq)?
                    .execute([seq as i64])
            })
            .map_err(commit_error)?;
        if changed == 0 {
            return Err(seq_row_missing());
        }
        Ok(())
    }

    /// The next seq (as [`Session::next_seq`] reckons it), written to
    /// `_scribe_meta` by the same statement: for a commit that records no
    /// key whatever happens inside it.
    ///
    /// # Errors
    ///
    /// SQLite's error, or the sequence row missing.
    pub fn bump_seq(&self) -> Result<u64, WriteError> {
        let seq: i64 = self
            .guard
            .trusted(|| {
                self.conn
                    .prepare_cached(&self.own.bump_seq)?
                    .query_row([], |r| r.get(0))
            })
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => seq_row_missing(),
                e => commit_error(e),
            })?;
        Ok(seq.max(1) as u64)
    }
}

/// `_scribe_meta` has no seq row: the file was damaged.
fn seq_row_missing() -> WriteError {
    WriteError::Sql {
        statement: None,
        code: rusqlite::ffi::SQLITE_CORRUPT,
        message: "the commit sequence row of _scribe_meta is missing".into(),
    }
}
