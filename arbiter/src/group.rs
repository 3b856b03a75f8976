//! One group commit: one transaction, one commit; the writer's connection
//! and what every commit does ([`crate::attempt`] runs the batches).

use rusqlite::Connection;
use scribe_protocol::{Receipt, WriteError};

use crate::budget::Budget;
use crate::exec::sql_error;
use crate::fileid::FileId;
use crate::guard::Guard;
use crate::requests;
use crate::schema::Own;

/// A batch as the writer sees it.
#[derive(Debug)]
pub struct Work {
    /// The batch.
    pub batch: scribe_protocol::Batch,
    /// Its fingerprint, when it carries a key (computed off the writer).
    pub fingerprint: u64,
    /// Its fingerprint as earlier builds recorded it, when that differs
    /// (named parameters in the order given; see
    /// [`Batch::fingerprint_as_given`](scribe_protocol::Batch::fingerprint_as_given)).
    pub as_given: Option<u64>,
}

/// What happened to one batch of a committed group.
pub type Outcome = Result<Receipt, WriteError>;

/// How a group attempt ended.
#[derive(Debug)]
pub enum Attempt {
    /// Committed (or rolled back when nothing was new): one outcome per
    /// batch, and the seq of the commit.
    Done {
        /// The commit's sequence number (`None` when nothing committed).
        seq: Option<u64>,
        /// New batches committed.
        fresh: u64,
        /// One per batch, in order.
        outcomes: Vec<Outcome>,
    },
    /// SQLite rolled back the whole transaction because of batch `index`
    /// (interrupt, disk full…): that batch failed with `error`; the others
    /// must run again.
    Aborted {
        /// The batch that caused it.
        index: usize,
        /// Its error.
        error: WriteError,
    },
    /// A batch outlasted the socket thread's slice
    /// ([`Budget::slice`]): the transaction was rolled back whole and no
    /// batch has an outcome; the writer thread must run the group.
    Sliced,
}

/// The writer's connection and what is installed on it.
#[derive(Debug)]
pub struct Session {
    /// The one read-write connection.
    pub conn: Connection,
    /// The authorizer.
    pub guard: Guard,
    /// The per-batch time budget.
    pub budget: Budget,
    /// The arbiter's own statements.
    pub own: Own,
    /// The database file's path and identity when it was opened.
    pub file: (std::path::PathBuf, FileId),
    /// The `-wal` and `-shm` files SQLite opened beside it (see
    /// `walrestore`: their paths may change under the arbiter).
    pub companions: crate::walrestore::Companions,
    /// Where each recorded key's row is, and the keys the open
    /// transaction records (kept in step with the table).
    pub keys: crate::keyindex::KeyIndex,
    /// Most keys kept.
    pub max_keys: u64,
    /// Frames in the WAL after the latest commit (for the checkpointer).
    pub wal_pages: std::sync::Arc<crate::checkpoint::WalPages>,
    /// Groups still to run with savepoints from the start (see
    /// [`crate::attempt`]).
    pub careful: std::cell::Cell<u32>,
    /// `PRAGMA foreign_keys`: the default, and what the connection has.
    pub foreign_keys: crate::foreign_keys::ForeignKeys,
    /// `PRAGMA data_version` as last seen (see `outside`).
    pub data_version: std::cell::Cell<i64>,
}

/// Why the database can no longer be written.
pub fn moved(path: &std::path::Path) -> WriteError {
    WriteError::Unavailable {
        reason: format!(
            "the database file {} was moved, replaced or deleted while the arbiter ran; \
             nothing was written, and the arbiter is stopping",
            path.display()
        ),
    }
}

impl Session {
    /// Runs an own statement with the guard lowered.
    pub fn own(&self, sql: &str) -> rusqlite::Result<()> {
        self.guard
            .trusted(|| self.conn.prepare_cached(sql)?.execute([]).map(drop))
    }

    /// Rolls back whatever transaction is open (after an error anywhere).
    pub fn reset(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.own(&self.own.rollback);
        }
        self.keys.rollback();
        self.check_keys();
    }

    /// The key index against the table (debug builds; see
    /// [`KeyIndex::check`](crate::keyindex::KeyIndex::check)).
    fn check_keys(&self) {
        if cfg!(debug_assertions) {
            // Against the table as it is now (see `outside`).
            let _ = self.notice_outside_changes();
            self.guard
                .trusted(|| requests::check(&self.conn, &self.own, &self.keys));
        }
    }

    /// Commits the open transaction; the key index follows.
    ///
    /// # Errors
    ///
    /// COMMIT's error (the caller resets).
    pub fn commit(&self) -> Result<(), WriteError> {
        self.own(&self.own.commit).map_err(commit_error)?;
        self.keys.commit();
        self.check_keys();
        Ok(())
    }

    /// Rolls the open transaction back; the key index follows.
    ///
    /// # Errors
    ///
    /// ROLLBACK's error.
    pub fn rollback(&self) -> Result<(), WriteError> {
        self.keys.rollback();
        self.own(&self.own.rollback).map_err(commit_error)?;
        self.check_keys();
        Ok(())
    }

    /// True while the path still names the file the arbiter opened.
    pub fn file_in_place(&self) -> bool {
        self.file.1.is_at(&self.file.0)
    }

    /// Opens a write session's transaction, its writes checked against
    /// foreign keys as `foreign_keys` asks (`None`: the default).
    ///
    /// # Errors
    ///
    /// When `BEGIN IMMEDIATE` fails.
    pub fn begin_session(&self, foreign_keys: Option<bool>) -> Result<(), WriteError> {
        self.reset();
        self.foreign_keys_for(foreign_keys)?;
        self.own(&self.own.begin).map_err(commit_error)?;
        self.notice_outside_changes()?;
        crate::exec::reset_last_insert_rowid(&self.conn);
        self.guard.session(true);
        Ok(())
    }

    /// Whether the open transaction has deferred foreign-key constraints
    /// still unresolved, so that its COMMIT would fail (SQLite's
    /// `SQLITE_DBSTATUS_DEFERRED_FKS`, the count COMMIT checks).
    pub fn deferred_constraints_pending(&self) -> bool {
        use rusqlite::ffi;
        let (mut now, mut high) = (0, 0);
        // SAFETY: this connection's own handle, on the thread using it;
        // the call reads one counter.
        let rc = unsafe {
            ffi::sqlite3_db_status(
                self.conn.handle(),
                ffi::SQLITE_DBSTATUS_DEFERRED_FKS,
                &mut now,
                &mut high,
                0,
            )
        };
        rc == ffi::SQLITE_OK && now > 0
    }

    /// Commits a write session's transaction: its seq, its key's record
    /// (when it has one), then COMMIT. On failure the transaction is
    /// rolled back.
    ///
    /// # Errors
    ///
    /// `Conflict` when the key was already used; SQLite's error at COMMIT
    /// (a deferred constraint).
    pub fn commit_session(&self, key: Option<&str>) -> Result<Receipt, WriteError> {
        let out = self.commit_session_inner(key);
        if out.is_err() {
            self.reset();
        }
        out
    }

    fn commit_session_inner(&self, key: Option<&str>) -> Result<Receipt, WriteError> {
        // Savepoints the caller left open must not decide what commits.
        self.guard.session(false);
        let key = key.map(|k| self.keys.key(k));
        if let Some(key) = key {
            if self.find_key(key)?.is_some() {
                return Err(WriteError::Conflict {
                    statement: None,
                    message: format!(
                        "idempotency key {:?} was already used; the session was rolled back",
                        key.text
                    ),
                });
            }
        }
        let seq = match key {
            Some(_) => self.next_seq()?,
            None => self.bump_seq()?,
        };
        let receipt = Receipt {
            seq,
            results: Vec::new(),
            replayed: false,
        };
        if let Some(key) = key {
            // The row of keys carries the seq.
            let record = crate::requests::Record {
                key,
                fingerprint: SESSION_FINGERPRINT,
                receipt: &receipt,
            };
            self.record_key(&record)?;
        }
        self.finish(seq, key.is_none(), u64::from(key.is_some()))?;
        Ok(receipt)
    }

    /// The end of every commit: the keys this one `recorded` prune the
    /// oldest when they take the table a whole step past `--max-keys`
    /// (the bound holds under any load); the seq goes to `_scribe_meta`
    /// unless it is there already (`meta_written`) or the row of keys
    /// recorded now carries it; that row is written; then COMMIT, if the
    /// file is still in place. On an error the transaction is rolled
    /// back.
    pub(crate) fn finish(
        &self,
        seq: u64,
        meta_written: bool,
        recorded: u64,
    ) -> Result<(), WriteError> {
        let out = self.finish_inner(seq, meta_written, recorded);
        if out.is_err() {
            self.reset();
        }
        out
    }

    fn finish_inner(&self, seq: u64, meta_written: bool, recorded: u64) -> Result<(), WriteError> {
        let over = (self.keys.len() + recorded).saturating_sub(self.max_keys);
        if over >= prune_step(self.max_keys) {
            self.guard
                .trusted(|| requests::prune_oldest(&self.conn, &self.own, &self.keys, over))
                .map_err(commit_error)?;
        }
        if recorded == 0 && !meta_written {
            self.write_seq(seq)?;
        }
        self.guard
            .trusted(|| requests::write_staged(&self.conn, &self.own, &self.keys, seq))
            .map_err(commit_error)?;
        if !self.file_in_place() {
            return Err(moved(&self.file.0));
        }
        self.commit()
    }
}

/// The fingerprint recorded for a write session's commit key (a batch
/// with the same key is told apart from it).
pub const SESSION_FINGERPRINT: u64 = 0x5e55_1011_c0bb_17ed;

/// Keys recorded past the bound before the oldest are deleted, together:
/// one step in a hundred of the bound, at least 64 and at most 1,024.
pub fn prune_step(max_keys: u64) -> u64 {
    (max_keys / 100).clamp(64, 1024)
}

/// A failure of the transaction itself, not of a statement.
pub fn commit_error(e: rusqlite::Error) -> WriteError {
    let mut w = sql_error(0, e);
    if let WriteError::Sql { statement, .. } = &mut w {
        *statement = None;
    }
    w
}

/// True for a COMMIT refused by a constraint (a deferred foreign key):
/// one batch of the group is at fault, and running each batch alone finds
/// it.
pub fn is_constraint(e: &WriteError) -> bool {
    matches!(e, WriteError::Sql { statement: None, code, .. } if code & 0xff == 19)
}

#[cfg(test)]
#[path = "group_tests.rs"]
pub(crate) mod tests;
