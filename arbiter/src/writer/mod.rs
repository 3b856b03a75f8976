//! The writer: the only owner of the read-write connection, fed by a
//! bounded queue.
//!
//! It takes everything waiting (up to a limit), opens one `BEGIN
//! IMMEDIATE`, runs each batch (a failing batch rolls back alone), commits
//! once, and only then answers every caller of the group. While it
//! commits, the adapters keep reading requests, which form the next
//! group: no timer, no wait when idle. With `--synchronous full` the
//! answers wait for the syncer's `fdatasync` of the WAL instead, which
//! runs beside the writer and covers every commit made before it began:
//! the writer never waits on the disk.
//!
//! - `mod.rs`: [`WriterHandle`] (queue, stop, counters) and [`spawn`].
//! - `reply.rs`: where an answer goes (a connection's outbox, a channel).
//! - `run.rs`: the writer thread's loop and one group's commit.
//! - `syncer.rs`: the thread that makes commits durable before answers.

mod reply;
mod run;
mod syncer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use scribe_protocol::limits::Limits;
use scribe_protocol::{Answer, Batch, Receipt, WriteError};
use tokio::sync::{mpsc, oneshot};

pub use reply::{Outbox, ReplyTo};

use crate::group::{Session, Work};
use crate::inflight::Room;
use crate::requests::Retention;
use crate::stats::Stats;

/// One queued write and where to send its answer.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) work: Work,
    pub(crate) reply: ReplyTo,
    /// The memory the request holds, given back once it has run.
    pub(crate) _room: Option<Room>,
}

#[derive(Debug)]
pub(crate) enum Msg {
    Write(Job),
    /// Time for housekeeping (pruning idempotency keys) if it is due.
    Tick,
    /// Finish what is queued before this, then exit.
    Stop,
}

/// How the writer runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Capacity of the queue.
    pub capacity: usize,
    /// Most batches in one commit.
    pub max_group: usize,
    /// Key retention.
    pub retention: Retention,
    /// How often idle time is used to prune keys past their retention.
    pub prune_every: Duration,
    /// Request limits, checked again here.
    pub limits: Limits,
    /// Answer only once the WAL is synced (`--synchronous full`).
    pub durable: bool,
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

impl WriterHandle {
    /// Queues a batch; its answer goes to `reply`. Never waits.
    ///
    /// # Errors
    ///
    /// `Refused` over a limit, `Overloaded` when the queue is full,
    /// `ShuttingDown` once a stop began (nothing was queued then, and
    /// `reply` was not used).
    pub fn enqueue(
        &self,
        batch: Batch,
        reply: ReplyTo,
        room: Option<Room>,
    ) -> Result<(), WriteError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(WriteError::ShuttingDown);
        }
        batch.check(&self.limits)?;
        let fingerprint = if batch.key.is_some() {
            batch.fingerprint()
        } else {
            0
        };
        let job = Job {
            work: Work { batch, fingerprint },
            reply,
            _room: room,
        };
        match self.tx.try_send(Msg::Write(job)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                let queued = self.depth();
                self.stats.overloaded();
                Err(WriteError::Overloaded {
                    reason: format!(
                        "its write queue is full ({} writes, scribed --queue-capacity)",
                        self.capacity
                    ),
                    retry_after_ms: self.stats.retry_after_ms(queued),
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(WriteError::ShuttingDown),
        }
    }

    /// Queues a batch and waits for its answer.
    ///
    /// # Errors
    ///
    /// As [`WriterHandle::enqueue`], else the batch's own outcome.
    pub async fn submit(&self, batch: Batch, room: Option<Room>) -> Result<Receipt, WriteError> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(batch, ReplyTo::Oneshot(tx), room)?;
        // Jobs the writer will not run are answered `ShuttingDown`; a reply
        // dropped unanswered means the writer thread died mid-group, maybe
        // after its COMMIT: the outcome is unknown.
        match rx.await {
            Ok(Ok(Answer::Receipt(r))) => Ok(r),
            Ok(Ok(other)) => Err(WriteError::Protocol {
                message: format!("the writer answered a write with {other:?}"),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(WriteError::Timeout {
                message: "the writer stopped before answering; the write may or may not have \
                          committed (retry it with the same idempotency key)"
                    .into(),
            }),
        }
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

/// Starts the writer thread on `session` (and the syncer, when answers
/// must wait for durability).
///
/// # Errors
///
/// When a thread cannot be started or the WAL cannot be opened for
/// syncing.
pub fn spawn(
    session: Session,
    settings: Settings,
    stats: Arc<Stats>,
) -> std::io::Result<(WriterHandle, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(settings.capacity);
    let handle = WriterHandle {
        tx,
        capacity: settings.capacity,
        stopping: Arc::new(AtomicBool::new(false)),
        stats: stats.clone(),
        limits: settings.limits.clone(),
    };
    let syncer = if settings.durable {
        Some(syncer::Syncer::start(&session.file.0, stats.clone())?)
    } else {
        None
    };
    let thread = std::thread::Builder::new()
        .name("scribe-writer".into())
        .spawn(move || run::Writer::new(session, stats, &settings, syncer).run(rx))?;
    Ok((handle, thread))
}

#[cfg(test)]
pub(crate) use run::commit_as_one_group;
