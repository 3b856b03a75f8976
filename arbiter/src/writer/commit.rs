//! One group's commit, on the writer thread or the socket thread's (see
//! [`Writer::commit_here`]), and its answers.

use std::time::{Duration, Instant};

use scribe_protocol::{Answer, Reply};
use tracing::{debug, info, warn};

use super::reply::Held;
use super::run::Writer;
use super::Job;
use crate::group::{is_constraint, Attempt, Outcome, Work};

/// Longest a group committed on the socket thread may run there (see
/// [`Writer::commit_here`]): well under what a caller waits for a status
/// or a hello, and far over a small group's commit.
pub(super) const HERE_SLICE: Duration = Duration::from_millis(20);

impl Writer {
    /// Commits a group of small writes on the calling thread (the adapters'
    /// runtime), the writer being [`Writer::idle`]: the writes skip two
    /// hand-overs between threads, each a wakeup that costs more CPU on a
    /// virtual machine than the commit itself.
    ///
    /// That thread serves every connection, so the group runs under a
    /// slice of [`HERE_SLICE`]: a batch that outlasts it is interrupted,
    /// the transaction rolled back whole, and the writes not yet answered
    /// are given back, in order, for the writer thread.
    pub(super) fn commit_here(&mut self, group: Vec<Job>) -> Vec<Job> {
        let started = Instant::now();
        self.session.budget.slice(Some(started + HERE_SLICE));
        let left = self.commit_group(group, true);
        self.session.budget.slice(None);
        if !left.is_empty() {
            info!(
                writes = left.len(),
                ran_ms = started.elapsed().as_millis() as u64,
                "a group outlasted the socket thread's slice; the writer thread runs it"
            );
        }
        left
    }

    /// Commits one group and answers its callers (`here`: from this
    /// thread, which is the adapters' runtime); returns the writes a
    /// slice cut short, unanswered.
    pub(super) fn commit_group(&mut self, group: Vec<Job>, here: bool) -> Vec<Job> {
        self.stats.writing(true);
        let mut answers: Held = Vec::with_capacity(group.len());
        let left = self.commit_runs(group, &mut answers);
        self.stats.writing(false);
        if !answers.is_empty() {
            self.deliver(answers, here, true);
        }
        left
    }

    /// Commits `group` in runs of writes that want the same foreign-key
    /// checks, in order (one transaction cannot mix them: see
    /// [`crate::foreign_keys`]); returns the writes a slice left
    /// unanswered, with every later run's.
    fn commit_runs(&mut self, mut group: Vec<Job>, answers: &mut Held) -> Vec<Job> {
        loop {
            let fk = &self.session.foreign_keys;
            let want = |j: &Job| fk.wanted(j.work.batch.foreign_keys);
            let split = match group.first() {
                Some(first) => group.iter().position(|j| want(j) != want(first)),
                None => None,
            };
            let Some(split) = split else {
                return self.commit_jobs(group, answers);
            };
            let rest = group.split_off(split);
            let mut left = self.commit_jobs(group, answers);
            if !left.is_empty() {
                left.extend(rest);
                return left;
            }
            group = rest;
        }
    }

    /// Commits `group`, pushing each answer; returns the writes left
    /// unanswered when a slice cut the group short (all of them from the
    /// first one not committed: they keep their order).
    fn commit_jobs(&mut self, mut group: Vec<Job>, answers: &mut Held) -> Vec<Job> {
        let started = Instant::now();
        loop {
            let works: Vec<&Work> = group.iter().map(|j| &j.work).collect();
            match self.session.attempt(&works) {
                Ok(Attempt::Done {
                    seq,
                    fresh,
                    outcomes,
                }) => {
                    let took = started.elapsed();
                    let failed = outcomes.iter().filter(|o| o.is_err()).count() as u64;
                    let replayed = outcomes.len() as u64 - failed - fresh;
                    match seq {
                        Some(seq) => self.stats.commit(seq, fresh, failed, took),
                        None => self.stats.failed(failed),
                    }
                    self.stats.replayed(replayed);
                    debug!(
                        seq = ?seq,
                        fresh,
                        failed,
                        replayed,
                        took_us = took.as_micros() as u64,
                        "group"
                    );
                    // A batch that failed against a database file no
                    // longer at its path (deleted, moved) failed against
                    // the wrong file: it is told to retry, as the commit
                    // of the others would have been ("table t already
                    // exists" came back after a test's set-up deleted it).
                    let gone = failed > 0 && !self.session.file_in_place();
                    for (job, outcome) in group.into_iter().zip(outcomes) {
                        let outcome = match outcome {
                            Err(_) if gone => Err(crate::group::moved(&self.session.file.0)),
                            o => o,
                        };
                        answers.push((job.reply, reply(outcome)));
                    }
                    return Vec::new();
                }
                Ok(Attempt::Sliced) => return group,
                Ok(Attempt::Aborted { index, error }) => {
                    // SQLite undid the whole transaction because of one
                    // batch: answer it, run the others again.
                    let job = group.remove(index);
                    self.stats.failed(1);
                    answers.push((job.reply, Err(error)));
                    if group.is_empty() {
                        return Vec::new();
                    }
                }
                Err(e) if group.len() > 1 && is_constraint(&e) => {
                    // A deferred constraint failed at COMMIT: find the
                    // batch at fault by committing each alone.
                    self.session.reset();
                    let mut left = Vec::new();
                    for job in group {
                        if left.is_empty() {
                            left = self.commit_jobs(vec![job], answers);
                        } else {
                            left.push(job);
                        }
                    }
                    return left;
                }
                Err(e) => {
                    self.session.reset();
                    warn!(error = %e, batches = group.len(), "group failed");
                    self.stats.error(e.to_string());
                    self.stats.failed(group.len() as u64);
                    for job in group {
                        answers.push((job.reply, Err(e.clone())));
                    }
                    return Vec::new();
                }
            }
        }
    }
}

fn reply(outcome: Outcome) -> Reply {
    outcome.map(Answer::Receipt)
}
