//! Writes gathered on the adapters' side before they go to the writer.
//!
//! Every connection that a read wakes stages its writes here, and one
//! flusher task hands everything staged to the writer after them, in one
//! message. The writer then finds, at once, every write that arrived in
//! the same turn of the runtime, and commits them as one group; handing
//! each write over as it was read woke the writer on the first and left
//! the rest for the next group.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::queue::Queue;
use super::{Item, Msg};

/// The staging area, shared by every adapter and the flusher task.
#[derive(Debug)]
pub(crate) struct Stage {
    jobs: Mutex<Vec<Item>>,
    notify: Notify,
    /// Writes staged or queued and not yet taken by the writer.
    pub(crate) queued: AtomicUsize,
}

impl Stage {
    pub(crate) fn new() -> Arc<Stage> {
        Arc::new(Stage {
            jobs: Mutex::new(Vec::new()),
            notify: Notify::new(),
            queued: AtomicUsize::new(0),
        })
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

    /// Hands everything staged to the writer now.
    pub(crate) fn flush(&self, tx: &Queue<Msg>) {
        let jobs = std::mem::take(&mut *self.lock());
        if !jobs.is_empty() {
            if let Err(Msg::Jobs(jobs)) = tx.send(Msg::Jobs(jobs)) {
                // The writer has gone: nothing of these will run.
                self.queued.fetch_sub(jobs.len(), Ordering::AcqRel);
                jobs.into_iter().for_each(Item::refuse);
            }
        }
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
