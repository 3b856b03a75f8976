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
//! The writer is a locked state more than a thread: when it is idle
//! (unlocked, nothing queued), a small group of writes commits on the
//! adapters' own thread, and its answers go out from there, without the
//! two hand-overs between threads that cost more CPU than the commit on
//! a virtual machine. Sessions, migrations, large groups, and every write
//! that arrives while the writer is busy go to the writer thread, in
//! order: the thread takes from the queue only with the writer locked,
//! and a group commits here only when the queue is empty.
//!
//! - `mod.rs`: [`WriterHandle`] (queue, stop, counters) and [`spawn`].
//! - `item.rs`: what the writer's queue carries.
//! - `queue.rs`: the writer's queue (it sleeps at once when idle).
//! - `housekeeping.rs`: pruning keys.
//! - `last_checkpoint.rs`: the last checkpoint, and a WAL taken from its
//!   path put back first.
//! - `reply.rs`: where an answer goes (a connection's outbox, a channel).
//! - `stage.rs`: writes gathered per turn of the runtime, handed over
//!   together.
//! - `run.rs`: the writer thread's loop.
//! - `commit.rs`: one group's commit (there or on the adapters' thread).
//! - `syncer.rs`: the thread that makes commits durable before answers.
//! - `link.rs`, `session.rs`, `handover.rs`: write sessions: their calls
//!   on the way to the writer, the writer serving one, and sessions begun
//!   on the adapters' thread.
//! - `rebuild.rs`: a session's statement cut short on the adapters'
//!   thread, run again on the writer thread (its transaction put back).
//! - `overdue.rs`: a caller's own limit on the wait for the writer.

mod commit;
mod handover;
mod housekeeping;
mod item;
mod last_checkpoint;
mod link;
mod many;
mod migrate;
mod overdue;
#[cfg(test)]
mod overdue_tests;
mod queue;
mod rebuild;
#[cfg(test)]
mod rebuild_tests;
mod reply;
mod run;
mod session;
#[cfg(test)]
mod session_tests;
mod stage;
mod syncer;
#[cfg(test)]
mod test_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use scribe_protocol::limits::Limits;
use scribe_protocol::{Answer, Batch, Receipt, WriteError};
use tokio::sync::oneshot;

pub(crate) use item::{Item, Job, Msg};
pub use link::{SessionLink, SessionOp};
pub use many::Many;
pub use reply::{Answers, Outbox, ReplyTo};
pub use session::SessionLimits;

use crate::group::{Session, Work};
use crate::inflight::Room;
use crate::requests::Retention;
use crate::stats::Stats;

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
    /// Where a group's answers are handed to the adapters.
    pub answers: Answers,
    /// Caps on write sessions' leases.
    pub sessions: SessionLimits,
}

/// A cloneable handle to the writer's queue.
#[derive(Clone, Debug)]
pub struct WriterHandle {
    tx: Arc<queue::Queue<Msg>>,
    stage: Arc<stage::Stage>,
    /// Cancelled when the writer thread has exited, however it ended:
    /// told to whoever waits for it (no one polls).
    gone: tokio_util::sync::CancellationToken,
    capacity: usize,
    stopping: Arc<AtomicBool>,
    stats: Arc<Stats>,
    limits: Limits,
    /// Stops a session's statement when its connection closes.
    canceller: crate::budget::Canceller,
}

impl WriterHandle {
    /// Session `id`'s connection closed: its running statement stops
    /// (the session is being rolled back; see `budget::Canceller`).
    pub fn cancel_session(&self, id: u64) {
        self.canceller.cancel(id);
    }

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
        let (fingerprint, as_given) = if batch.key.is_some() {
            (batch.fingerprint(), batch.fingerprint_as_given())
        } else {
            (0, None)
        };
        self.admit()?;
        let wait = overdue::Wait::from_ms(batch.wait_ms);
        self.stage.push(Item::Write(Job {
            work: Work {
                batch,
                fingerprint,
                as_given,
            },
            reply,
            _room: room,
            wait,
        }));
        Ok(())
    }

    /// Queues a write session's begin; `began` is answered once the
    /// writer serves it.
    ///
    /// # Errors
    ///
    /// As [`WriterHandle::enqueue`].
    pub fn begin(&self, link: Arc<SessionLink>, began: ReplyTo) -> Result<(), WriteError> {
        self.admit()?;
        if let Err((link, began)) = handover::begin_here(&self.stage, &self.tx, link, began) {
            self.stage.push(Item::Begin(link, began));
        }
        Ok(())
    }

    /// Hands a call of `link`'s session to the writer: run on this thread
    /// when the writer is free and serving that session, else through the
    /// link.
    ///
    /// # Errors
    ///
    /// The call and why the session ended.
    pub fn session_call(
        &self,
        link: &SessionLink,
        op: SessionOp,
    ) -> Result<(), (SessionOp, String)> {
        match session::call_here(&self.stage, &self.tx, link, op) {
            Ok(()) => Ok(()),
            Err(op) => link.send(op),
        }
    }

    /// Queues a commit asked again by key.
    ///
    /// # Errors
    ///
    /// As [`WriterHandle::enqueue`].
    pub fn replay(&self, key: String, to: ReplyTo) -> Result<(), WriteError> {
        self.admit()?;
        self.stage.push(Item::Replay(key, to));
        Ok(())
    }

    /// Queues schema migrations.
    ///
    /// # Errors
    ///
    /// As [`WriterHandle::enqueue`].
    pub fn migrate(
        &self,
        list: Vec<scribe_protocol::Migration>,
        to: ReplyTo,
    ) -> Result<(), WriteError> {
        self.admit()?;
        self.stage.push(Item::Migrate(list, to));
        Ok(())
    }

    /// Whether one more item may be queued.
    fn admit(&self) -> Result<(), WriteError> {
        if self.stopping.load(Ordering::Acquire) || self.is_closed() {
            return Err(WriteError::ShuttingDown);
        }
        let queued = self.depth();
        if queued >= self.capacity as u64 {
            self.stats.overloaded();
            return Err(WriteError::Overloaded {
                reason: format!(
                    "its write queue is full ({} writes, scribed --queue-capacity)",
                    self.capacity
                ),
                retry_after_ms: self.stats.retry_after_ms(queued),
            });
        }
        Ok(())
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
        self.stage.queued.load(Ordering::Acquire) as u64
    }

    /// Capacity of the queue.
    pub fn capacity(&self) -> u64 {
        self.capacity as u64
    }

    /// True once the writer thread has exited (its queue is closed).
    pub fn is_closed(&self) -> bool {
        self.gone.is_cancelled()
    }

    /// Returns once the writer thread has exited (at once if it has).
    pub async fn closed(&self) {
        self.gone.cancelled().await;
    }

    /// True once a stop began.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Asks the writer to do its housekeeping when it next has a moment
    /// (skipped when the queue is full: it is busy anyway).
    pub fn tick(&self) {
        if self.depth() == 0 {
            let _ = self.tx.send(Msg::Tick);
        }
    }

    /// Stops taking writes and asks the writer to finish the queue and
    /// exit. Returns how many writes were queued at that moment.
    pub async fn stop(&self) -> u64 {
        let first = !self.stopping.swap(true, Ordering::AcqRel);
        let queued = self.depth();
        if first {
            // The stop goes behind every write staged or queued.
            self.stage.flush(&self.tx);
            let _ = self.tx.send(Msg::Stop);
        }
        queued
    }

    /// The task that hands staged writes to the writer; run it on the
    /// adapters' runtime.
    pub fn flusher(&self) -> impl std::future::Future<Output = ()> + use<> {
        self.stage.clone().flusher(self.tx.clone())
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
    let tx = Arc::new(queue::Queue::<Msg>::default());
    let rx = tx.clone();
    let canceller = session.budget.canceller();
    let syncer = if settings.durable {
        Some(syncer::Syncer::start(
            &session.file.0,
            stats.clone(),
            settings.answers.clone(),
        )?)
    } else {
        None
    };
    let writer = Arc::new(Mutex::new(run::Writer::new(
        session,
        stats.clone(),
        &settings,
        syncer,
    )));
    let stage = stage::Stage::new(writer.clone());
    let gone = tokio_util::sync::CancellationToken::new();
    let handle = WriterHandle {
        tx,
        stage: stage.clone(),
        gone: gone.clone(),
        capacity: settings.capacity,
        stopping: Arc::new(AtomicBool::new(false)),
        stats: stats.clone(),
        limits: settings.limits.clone(),
        canceller,
    };
    let thread = std::thread::Builder::new()
        .name("scribe-writer".into())
        .spawn(move || {
            // Marks the writer gone however its thread ends (a panic too).
            let _gone = gone.drop_guard();
            run::serve(&writer, &rx, &stage);
            for msg in rx.close() {
                if let Msg::Jobs(items) = msg {
                    stage.refuse_all(items);
                }
            }
        })?;
    Ok((handle, thread))
}

#[cfg(test)]
pub(crate) use test_support::commit_as_one_group;
