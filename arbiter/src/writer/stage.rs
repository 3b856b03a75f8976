//! Writes gathered on the adapters' side before they go to the writer.
//!
//! Every connection that a read wakes stages its writes here, and one
//! flusher task hands everything staged to the writer after them, in one
//! message. The writer then finds, at once, every write that arrived in
//! the same turn of the runtime, and commits them as one group; handing
//! each write over as it was read woke the writer on the first and left
//! the rest for the next group.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use tokio::sync::Notify;

use super::link::SessionLink;
use super::queue::Queue;
use super::run::Writer;
use super::{Item, Job, Msg};

/// A group commits on the adapters' thread only when it is this small:
/// a larger one would hold up every connection's reads while it runs.
const HERE_MAX_STATEMENTS: usize = 64;
/// ... and holds at most this much memory (KiB of the in-flight budget).
const HERE_MAX_KIB: usize = 256;

/// The staging area, shared by every adapter and the flusher task.
pub(crate) struct Stage {
    jobs: Mutex<Vec<Item>>,
    notify: Notify,
    /// Writes staged or queued and not yet taken by the writer.
    pub(crate) queued: AtomicUsize,
    /// The writer, for groups committed here while it is idle.
    writer: Arc<Mutex<Writer>>,
    /// The link of the session the writer serves (the writer's own).
    watched: Arc<Mutex<Option<Arc<SessionLink>>>>,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("queued", &self.queued)
            .finish_non_exhaustive()
    }
}

impl Stage {
    pub(crate) fn new(writer: Arc<Mutex<Writer>>) -> Arc<Stage> {
        let watched = writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .watched
            .clone();
        Arc::new(Stage {
            watched,
            jobs: Mutex::new(Vec::new()),
            notify: Notify::new(),
            queued: AtomicUsize::new(0),
            writer,
        })
    }

    /// The writer (for a session's calls run on the adapters' thread).
    pub(crate) fn writer(&self) -> &Mutex<Writer> {
        &self.writer
    }

    /// True when nothing is staged.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Item>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stages a write (wakes the flusher when it is the first).
    pub(crate) fn push(&self, job: Item) {
        self.queued.fetch_add(1, Ordering::AcqRel);
        let mut jobs = self.lock();
        jobs.push(job);
        if jobs.len() == 1 {
            drop(jobs);
            self.notify.notify_one();
        }
    }

    /// Hands everything staged to the writer now: commits it on this
    /// thread when it is a small group of writes and the writer is idle,
    /// else queues it for the writer thread.
    pub(crate) fn flush(&self, tx: &Queue<Msg>) {
        let jobs = {
            let mut staged = self.lock();
            if staged.is_empty() {
                return;
            }
            // The next group starts with room for one like this: grown
            // from nothing, a group of 16 moved its writes three times
            // (about 570 instructions per write, callgrind). Capped: a
            // burst of thousands need not keep its room.
            let room = staged.len().min(256);
            std::mem::replace(&mut *staged, Vec::with_capacity(room))
        };
        let jobs = match self.commit_here(tx, jobs) {
            Ok(()) => return,
            Err(jobs) => jobs,
        };
        let limited = jobs.iter().any(|i| i.wait().is_some());
        match tx.send(Msg::Jobs(jobs)) {
            // The writer has gone: nothing of these will run.
            Err(Msg::Jobs(jobs)) => self.refuse_all(jobs),
            // Behind a session, the writer thread watches its link, not
            // the queue: it must look at these limits (`overdue.rs`).
            Ok(()) if limited => {
                let watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(link) = watched.as_ref() {
                    link.nudge();
                }
            }
            _ => {}
        }
    }

    /// Answers items that will never run `ShuttingDown`, and stops
    /// counting them as queued.
    pub(crate) fn refuse_all(&self, items: Vec<Item>) {
        self.queued.fetch_sub(items.len(), Ordering::AcqRel);
        items.into_iter().for_each(Item::refuse);
    }

    /// Commits `jobs` on this thread if they are small writes and the
    /// writer is idle (unlocked, nothing queued: the order of arrival
    /// holds); else gives them back, as it does those that outlasted the
    /// socket thread's slice.
    fn commit_here(&self, tx: &Queue<Msg>, jobs: Vec<Item>) -> Result<(), Vec<Item>> {
        let (mut statements, mut kib) = (0, 0);
        for item in &jobs {
            let Item::Write(job) = item else {
                return Err(jobs);
            };
            statements += job.work.batch.statements.len();
            kib += job._room.as_ref().map_or(0, crate::inflight::Room::kib);
        }
        if statements > HERE_MAX_STATEMENTS || kib > HERE_MAX_KIB {
            return Err(jobs);
        }
        let mut writer = match self.writer.try_lock() {
            Ok(w) => w,
            Err(TryLockError::WouldBlock | TryLockError::Poisoned(_)) => return Err(jobs),
        };
        // A session holds the writer, or the writer thread has items to
        // serve before these (it left the writer unlocked for a session).
        if !writer.idle() || !tx.is_empty() {
            return Err(jobs);
        }
        let n = jobs.len();
        let group: Vec<Job> = jobs.into_iter().filter_map(Item::into_job).collect();
        self.queued.fetch_sub(n, Ordering::AcqRel);
        let mut left = Vec::new();
        writer.guarded(tx, "a group", |w| left = w.commit_here(group));
        if left.is_empty() {
            return Ok(());
        }
        // Outlasted the slice: the writer thread runs them, still first;
        // they have started, so no limit on the wait refuses them now.
        self.queued.fetch_add(left.len(), Ordering::AcqRel);
        Err(left
            .into_iter()
            .map(|job| Item::Write(Job { wait: None, ..job }))
            .collect())
    }

    /// The flusher task: runs after the connections a read woke, and
    /// hands their writes over together.
    pub(crate) async fn flusher(self: Arc<Stage>, tx: Arc<Queue<Msg>>) {
        loop {
            self.notify.notified().await;
            // Let every task already woken in this turn stage its writes.
            tokio::task::yield_now().await;
            self.flush(&tx);
        }
    }
}
