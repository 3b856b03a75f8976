//! The writer thread: the only owner of the read-write connection.
//!
//! A bounded queue feeds it. It takes everything waiting (up to a limit),
//! opens one `BEGIN IMMEDIATE`, runs each batch in its own savepoint (a
//! failing batch rolls back alone), commits once, and only then answers
//! every caller of the group. While it commits, the RPC side keeps reading
//! requests, which form the next group: no timer, no wait when idle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use scribe_protocol::limits::Limits;
use scribe_protocol::{Batch, Receipt, WriteError};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::group::{is_constraint, Attempt, Session, Work};
use crate::requests::{self, Retention};
use crate::stats::Stats;

/// One queued write and where to send its answer.
struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Receipt, WriteError>>,
}

enum Msg {
    Write(Job),
    /// Time for housekeeping (pruning idempotency keys) if it is due.
    Tick,
    /// Finish what is queued before this, then exit.
    Stop,
}

/// A cloneable handle to the writer's queue.
#[derive(Clone, Debug)]
pub struct WriterHandle {
    tx: mpsc::Sender<Msg>,
    capacity: usize,
    stopping: Arc<AtomicBool>,
    stats: Arc<Stats>,
    limits: Limits,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Write(_) => "Write",
            Msg::Tick => "Tick",
            Msg::Stop => "Stop",
        })
    }
}

impl WriterHandle {
    /// Queues a batch and waits for its answer.
    ///
    /// # Errors
    ///
    /// `Refused` over a limit, `Overloaded` when the queue is full,
    /// `ShuttingDown` once a stop began, else the batch's own outcome.
    pub async fn submit(&self, batch: Batch) -> Result<Receipt, WriteError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(WriteError::ShuttingDown);
        }
        batch.check(&self.limits)?;
        let fingerprint = if batch.key.is_some() {
            batch.fingerprint()
        } else {
            0
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            work: Work { batch, fingerprint },
            reply,
        };
        match self.tx.try_send(Msg::Write(job)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let queued = self.depth();
                self.stats.overloaded();
                return Err(WriteError::Overloaded {
                    reason: format!(
                        "its write queue is full ({} writes, scribed --queue-capacity)",
                        self.capacity
                    ),
                    retry_after_ms: self.stats.retry_after_ms(queued),
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(WriteError::ShuttingDown),
        }
        // Jobs the writer will not run are answered `ShuttingDown`; a reply
        // dropped unanswered means the writer thread died mid-group, maybe
        // after its COMMIT: the outcome is unknown.
        answer.await.unwrap_or_else(|_| {
            Err(WriteError::Timeout {
                message: "the writer stopped before answering; the write may or may not have \
                          committed (retry it with the same idempotency key)"
                    .into(),
            })
        })
    }

    /// Writes waiting in the queue.
    pub fn depth(&self) -> u64 {
        (self.capacity - self.tx.capacity()) as u64
    }

    /// Capacity of the queue.
    pub fn capacity(&self) -> u64 {
        self.capacity as u64
    }

    /// True once the writer thread has exited (its queue is closed).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// True once a stop began.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Asks the writer to do its housekeeping when it next has a moment
    /// (skipped when the queue is full: it is busy anyway).
    pub fn tick(&self) {
        let _ = self.tx.try_send(Msg::Tick);
    }

    /// Stops taking writes and asks the writer to finish the queue and
    /// exit. Returns how many writes were queued at that moment.
    pub async fn stop(&self) -> u64 {
        let first = !self.stopping.swap(true, Ordering::AcqRel);
        let queued = self.depth();
        if first {
            // Waits for room: the stop goes behind every queued write.
            let _ = self.tx.send(Msg::Stop).await;
        }
        queued
    }
}

/// Starts the writer thread on `session`.
pub fn spawn(
    session: Session,
    capacity: usize,
    max_group: usize,
    retention: Retention,
    prune_every: Duration,
    limits: Limits,
    stats: Arc<Stats>,
) -> std::io::Result<(WriterHandle, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(capacity);
    let handle = WriterHandle {
        tx,
        capacity,
        stopping: Arc::new(AtomicBool::new(false)),
        stats: stats.clone(),
        limits,
    };
    let thread = std::thread::Builder::new()
        .name("scribe-writer".into())
        .spawn(move || {
            Writer {
                session,
                stats,
                retention,
                prune_every,
                last_prune: None,
            }
            .run(rx, max_group)
        })?;
    Ok((handle, thread))
}

/// How long the writer polls for the next write before it sleeps. Waking a
/// sleeping thread costs tens of microseconds on a VM (an inter-processor
/// interrupt and a reschedule); when callers answer quickly, the next
/// write usually arrives within this window.
const SPIN: Duration = Duration::from_micros(50);

/// The next message: polled for [`SPIN`] first, then waited for.
fn next_message(rx: &mut mpsc::Receiver<Msg>) -> Option<Msg> {
    let started = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(m) => return Some(m),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) if started.elapsed() < SPIN => {
                std::thread::yield_now();
            }
            Err(mpsc::error::TryRecvError::Empty) => return rx.blocking_recv(),
        }
    }
}

struct Writer {
    session: Session,
    stats: Arc<Stats>,
    retention: Retention,
    prune_every: Duration,
    last_prune: Option<Instant>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>, max_group: usize) {
        let mut group: Vec<Job> = Vec::with_capacity(max_group);
        let mut stop = false;
        while !stop {
            match next_message(&mut rx) {
                Some(Msg::Write(job)) => group.push(job),
                Some(Msg::Tick) => self.maybe_prune(),
                Some(Msg::Stop) | None => stop = true,
            }
            while !stop && group.len() < max_group {
                match rx.try_recv() {
                    Ok(Msg::Write(job)) => group.push(job),
                    Ok(Msg::Tick) => {}
                    Ok(Msg::Stop) => stop = true,
                    Err(_) => break,
                }
            }
            if !group.is_empty() {
                self.commit_group(std::mem::take(&mut group));
            }
        }
        // Anything that slipped in behind the stop was never run.
        rx.close();
        while let Ok(msg) = rx.try_recv() {
            if let Msg::Write(job) = msg {
                let _ = job.reply.send(Err(WriteError::ShuttingDown));
            }
        }
        self.checkpoint();
    }

    /// Commits one group and answers its callers.
    fn commit_group(&mut self, group: Vec<Job>) {
        self.stats.writing(true);
        self.commit_group_inner(group);
        self.stats.writing(false);
    }

    fn commit_group_inner(&mut self, mut group: Vec<Job>) {
        let started = Instant::now();
        loop {
            let works: Vec<&Work> = group.iter().map(|j| &j.work).collect();
            match self.session.attempt(&works) {
                Ok(Attempt::Done {
                    seq,
                    fresh,
                    recorded,
                    pruned,
                    outcomes,
                }) => {
                    let took = started.elapsed();
                    let failed = outcomes.iter().filter(|o| o.is_err()).count() as u64;
                    let replayed = outcomes.len() as u64 - failed - fresh;
                    self.session.keys = (self.session.keys + recorded).saturating_sub(pruned);
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
                    for (job, outcome) in group.into_iter().zip(outcomes) {
                        let _ = job.reply.send(outcome);
                    }
                    return;
                }
                Ok(Attempt::Aborted { index, error }) => {
                    // SQLite undid the whole transaction because of one
                    // batch: answer it, run the others again.
                    let job = group.remove(index);
                    self.stats.failed(1);
                    let _ = job.reply.send(Err(error));
                    if group.is_empty() {
                        return;
                    }
                }
                Err(e) if group.len() > 1 && is_constraint(&e) => {
                    // A deferred constraint failed at COMMIT: find the
                    // batch at fault by committing each alone.
                    self.session.reset();
                    for job in group {
                        self.commit_group_inner(vec![job]);
                    }
                    return;
                }
                Err(e) => {
                    self.session.reset();
                    warn!(error = %e, batches = group.len(), "group failed");
                    self.stats.error(e.to_string());
                    self.stats.failed(group.len() as u64);
                    for job in group {
                        let _ = job.reply.send(Err(e.clone()));
                    }
                    return;
                }
            }
        }
    }

    fn maybe_prune(&mut self) {
        if self
            .last_prune
            .is_some_and(|t| t.elapsed() < self.prune_every)
        {
            return;
        }
        self.last_prune = Some(Instant::now());
        let pruned = self.session.guard.trusted(|| {
            requests::prune_aged(&self.session.conn, &self.session.own, self.retention.window)
        });
        match pruned {
            Ok(0) => {}
            Ok(n) => {
                self.session.keys = self.session.keys.saturating_sub(n);
                info!(pruned = n, "pruned idempotency keys past their retention");
            }
            Err(e) => {
                self.session.reset();
                warn!(error = %e, "pruning idempotency keys failed");
            }
        }
    }

    /// Truncates the WAL so the file is complete on its own after exit.
    fn checkpoint(&self) {
        let done = self.session.guard.trusted(|| {
            self.session
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                })
        });
        match done {
            Ok(0) => info!("WAL checkpointed"),
            Ok(busy) => warn!(busy, "WAL checkpoint incomplete (readers hold it)"),
            Err(e) => warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}

/// Commits `batches` as one group on `session`, on this thread (for the
/// in-process tests of the group commit); returns each batch's outcome.
#[cfg(test)]
pub(crate) fn commit_as_one_group(
    session: Session,
    batches: Vec<Batch>,
) -> (Session, Vec<crate::group::Outcome>) {
    let stats = Arc::new(Stats::new(0));
    let mut writer = Writer {
        session,
        stats,
        retention: Retention::default(),
        prune_every: Duration::from_secs(60),
        last_prune: None,
    };
    let mut answers = Vec::new();
    let jobs = batches
        .into_iter()
        .map(|batch| {
            let (reply, answer) = oneshot::channel();
            answers.push(answer);
            let fingerprint = batch.fingerprint();
            Job {
                work: Work { batch, fingerprint },
                reply,
            }
        })
        .collect();
    writer.commit_group(jobs);
    let outcomes = answers
        .into_iter()
        .map(|mut a| a.try_recv().expect("every job is answered"))
        .collect();
    (writer.session, outcomes)
}
