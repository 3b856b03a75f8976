//! One group commit: one transaction, one savepoint per batch, one commit.

use rusqlite::Connection;
use scribe_protocol::{Receipt, WriteError};

use crate::budget::Budget;
use crate::exec::{run_batch, sql_error};
use crate::guard::{own, Guard};
use crate::requests;

/// A batch as the writer sees it.
#[derive(Debug)]
pub struct Work {
    /// The batch.
    pub batch: scribe_protocol::Batch,
    /// Its fingerprint, when it carries a key (computed off the writer).
    pub fingerprint: u64,
}

/// What happened to one batch of a committed group.
pub type Outcome = Result<Receipt, WriteError>;

/// How a group attempt ended.
#[derive(Debug)]
pub enum Attempt {
    /// Committed (or rolled back when nothing was new): one outcome per
    /// batch, and the seq of the commit.
    Done {
        /// The commit's sequence number (unchanged when nothing committed).
        seq: u64,
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
            let _ = self.own(own::ROLLBACK);
        }
    }

    /// One attempt at committing `group`, whose commit would be `seq`.
    ///
    /// # Errors
    ///
    /// A failure of the transaction itself (BEGIN, savepoints, COMMIT):
    /// nothing of the group was committed.
    pub fn attempt(&self, group: &[&Work], last_seq: u64) -> Result<Attempt, WriteError> {
        self.reset();
        let seq = last_seq + 1;
        self.own(own::BEGIN).map_err(commit_error)?;
        let mut outcomes = Vec::with_capacity(group.len());
        let mut fresh = 0;
        for (index, work) in group.iter().enumerate() {
            self.own(own::SAVEPOINT).map_err(commit_error)?;
            let outcome = self.apply(work, seq);
            match &outcome {
                Err(error) if self.conn.is_autocommit() => {
                    return Ok(Attempt::Aborted {
                        index,
                        error: error.clone(),
                    })
                }
                Err(_) => self.own(own::ROLLBACK_TO).map_err(commit_error)?,
                Ok(r) if !r.replayed => fresh += 1,
                Ok(_) => {}
            }
            self.own(own::RELEASE).map_err(commit_error)?;
            outcomes.push(outcome);
        }
        if fresh == 0 {
            self.own(own::ROLLBACK).map_err(commit_error)?;
            return Ok(Attempt::Done {
                seq: last_seq,
                fresh,
                outcomes,
            });
        }
        let bumped = self.guard.trusted(|| {
            self.conn
                .prepare_cached(own::BUMP_SEQ)?
                .execute([seq as i64])
        });
        match bumped {
            Ok(1) => {}
            Ok(n) => {
                return Err(WriteError::Sql {
                    statement: None,
                    code: 1,
                    message: format!("the commit sequence row is missing ({n} rows updated)"),
                })
            }
            Err(e) => return Err(commit_error(e)),
        }
        self.own(own::COMMIT).map_err(commit_error)?;
        Ok(Attempt::Done {
            seq,
            fresh,
            outcomes,
        })
    }

    /// Applies one batch inside its savepoint: a replay of its key, or
    /// its statements under the time budget, then the key's record.
    fn apply(&self, work: &Work, seq: u64) -> Outcome {
        let key = work.batch.key.as_deref();
        if let Some(key) = key {
            match self.guard.trusted(|| requests::find(&self.conn, key)) {
                Ok(Some((hash, mut receipt))) if hash == work.fingerprint => {
                    receipt.replayed = true;
                    return Ok(receipt);
                }
                Ok(Some(_)) => {
                    return Err(WriteError::Conflict {
                        statement: None,
                        message: format!(
                            "idempotency key {key:?} was already used for a different batch"
                        ),
                    })
                }
                Ok(None) => {}
                Err(e) => return Err(commit_error(e)),
            }
        }
        let (results, cut) = self
            .budget
            .run(|| run_batch(&self.conn, &self.guard, &work.batch));
        let results = results.map_err(|e| {
            if cut {
                WriteError::Refused {
                    reason: format!(
                        "the batch ran past its time budget of {} (scribed --batch-budget) and \
                         was interrupted; nothing was written",
                        humantime::format_duration(self.budget.limit())
                    ),
                }
            } else {
                e
            }
        })?;
        let receipt = Receipt {
            seq,
            results,
            replayed: false,
        };
        if let Some(key) = key {
            self.guard
                .trusted(|| requests::record(&self.conn, key, work.fingerprint, &receipt))
                .map_err(commit_error)?;
        }
        Ok(receipt)
    }
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
