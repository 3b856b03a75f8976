//! One attempt at a group: optimistic first, careful when a batch fails.
//!
//! A batch that fails must undo only itself, which takes a savepoint
//! around each batch of a group. Savepoints are dear: SQLite copies every
//! page a batch first touches into the statement journal, in case it is
//! rolled back to, and each costs two statements more. They were a
//! quarter of the arbiter's instructions per write with 16 writes in
//! flight (callgrind, BENCHMARKS.md), for failures that almost never
//! come.
//!
//! So a group runs first with no savepoint. If a batch fails there with
//! the transaction still open (its earlier statements may have changed
//! rows), the transaction is rolled back and the group runs again with a
//! savepoint per batch, as before; and so do the next [`CAREFUL_GROUPS`]
//! groups, so that a load where batches often fail (a claim finding
//! nothing free) does not pay twice for every group. A batch that was
//! refused (past its time budget, a statement the arbiter refuses, a
//! result over the limit) keeps its refusal in the second pass rather
//! than running again: the batches before it leave the same rows in
//! both passes, and a runaway batch costs its budget once.

use scribe_protocol::{Receipt, WriteError};

use crate::exec::{run_batch, Prepared};
use crate::group::{commit_error, Attempt, Outcome, Session, Work};

/// Groups run with savepoints after one whose optimistic pass failed.
pub const CAREFUL_GROUPS: u32 = 32;

/// How one pass over a group ended.
enum Pass {
    /// As the attempt ends.
    Ended(Attempt),
    /// With no savepoints, batch `index` failed and left the transaction
    /// open: the group must run again with savepoints (the transaction
    /// is rolled back already).
    Failed { index: usize, error: WriteError },
}

impl Session {
    /// One attempt at committing `group`: with no savepoint first (see
    /// the module's doc), with one per batch when a batch failed.
    ///
    /// # Errors
    ///
    /// A failure of the transaction itself (BEGIN, savepoints, COMMIT):
    /// nothing of the group was committed.
    pub fn attempt(&self, group: &[&Work]) -> Result<Attempt, WriteError> {
        let careful = self.careful.get();
        // A group of one needs none: undoing the batch is undoing the
        // transaction.
        let optimistic = group.len() == 1 || careful == 0;
        if !optimistic {
            self.careful.set(careful - 1);
            return self.pass(group, true, None).map(ended);
        }
        match self.pass(group, false, None)? {
            Pass::Ended(attempt) => Ok(attempt),
            Pass::Failed { index, error } => {
                self.careful.set(CAREFUL_GROUPS);
                let known = matches!(error, WriteError::Refused { .. }).then_some((index, error));
                self.pass(group, true, known).map(ended)
            }
        }
    }

    /// Runs `group` in one transaction, each batch in a savepoint when
    /// `savepoints`; `known` is a batch's outcome already decided.
    fn pass(
        &self,
        group: &[&Work],
        savepoints: bool,
        known: Option<(usize, WriteError)>,
    ) -> Result<Pass, WriteError> {
        self.reset();
        // The group wants one setting (`writer::commit` splits by it).
        self.foreign_keys_for(group.first().and_then(|w| w.batch.foreign_keys))?;
        self.own(&self.own.begin).map_err(commit_error)?;
        self.notice_outside_changes()?;
        // The seq comes from the file, inside this transaction: two
        // arbiters could never hand out one number twice. A group without
        // keys writes it to `_scribe_meta` as it takes it; one with keys
        // carries it in the row of keys it records.
        let keyed = group.iter().any(|w| w.batch.key.is_some());
        let seq = if keyed {
            self.next_seq()?
        } else {
            self.bump_seq()?
        };
        let mut outcomes = Vec::with_capacity(group.len());
        let (mut fresh, mut recorded) = (0, 0);
        let alone = group.len() == 1;
        // The batches' statements and the key record's, kept for the
        // whole group.
        let mut prepared = Prepared::default();
        for (index, work) in group.iter().enumerate() {
            let mark = self.keys.mark();
            if savepoints {
                self.own(&self.own.savepoint).map_err(commit_error)?;
            }
            let outcome = match &known {
                Some((at, error)) if *at == index => Err(error.clone()),
                _ => self.apply(work, seq, &mut prepared),
            };
            if self.budget.take_sliced() {
                self.reset();
                return Ok(Pass::Ended(Attempt::Sliced));
            }
            match &outcome {
                Err(error) if self.conn.is_autocommit() => {
                    self.keys.rollback();
                    return Ok(Pass::Ended(Attempt::Aborted {
                        index,
                        error: error.clone(),
                    }));
                }
                // Alone, it is undone with the transaction: nothing fresh
                // below.
                Err(_) if alone => {}
                Err(error) if !savepoints => {
                    self.reset();
                    return Ok(Pass::Failed {
                        index,
                        error: error.clone(),
                    });
                }
                Err(_) => {
                    self.keys.undo_to(mark);
                    self.own(&self.own.rollback_to).map_err(commit_error)?;
                }
                Ok(r) if !r.replayed => {
                    fresh += 1;
                    recorded += u64::from(work.batch.key.is_some());
                }
                Ok(_) => {}
            }
            if savepoints {
                self.own(&self.own.release).map_err(commit_error)?;
            }
            outcomes.push(outcome);
        }
        if fresh == 0 {
            self.rollback()?;
            return Ok(Pass::Ended(Attempt::Done {
                seq: None,
                fresh,
                outcomes,
            }));
        }
        self.finish(seq, !keyed, recorded)?;
        Ok(Pass::Ended(Attempt::Done {
            seq: Some(seq),
            fresh,
            outcomes,
        }))
    }

    /// Applies one batch: a replay of its key, or its statements under
    /// the time budget, then the key's record. (A key's look-up costs no
    /// SQL unless it may be there, so a key the caller calls fresh is
    /// looked up like any other.)
    fn apply<'a>(&'a self, work: &'a Work, seq: u64, prepared: &mut Prepared<'a>) -> Outcome {
        let key = work.batch.key.as_deref().map(|k| self.keys.key(k));
        if let Some(key) = key {
            match self.find_key(key)? {
                Some((hash, mut receipt))
                    if hash == work.fingerprint || Some(hash) == work.as_given =>
                {
                    receipt.replayed = true;
                    return Ok(receipt);
                }
                Some(_) => {
                    return Err(WriteError::Conflict {
                        statement: None,
                        message: format!(
                            "idempotency key {:?} was already used for a different batch",
                            key.text
                        ),
                    })
                }
                None => {}
            }
        }
        let (results, cut) = self
            .budget
            .run(|| run_batch(&self.conn, &self.guard, &work.batch, prepared));
        let results = results.map_err(|e| {
            if cut {
                WriteError::Refused {
                    statement: None,
                    reason: format!(
                        "the batch ran past its time budget of {} (scribed --batch-budget) and \
                         was interrupted",
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
            let record = crate::requests::Record {
                key,
                fingerprint: work.fingerprint,
                receipt: &receipt,
            };
            self.record_key(&record)?;
        }
        Ok(receipt)
    }
}

/// A careful pass never asks for another; were it to, the transaction is
/// rolled back already, which is what an abort by that batch means.
fn ended(pass: Pass) -> Attempt {
    match pass {
        Pass::Ended(attempt) => attempt,
        Pass::Failed { index, error } => Attempt::Aborted { index, error },
    }
}

#[cfg(test)]
#[path = "attempt_tests.rs"]
mod tests;
