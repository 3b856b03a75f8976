//! A caller's own limit on the wait for the writer (`wait_ms` of a batch
//! or a begin), as SQLite's busy timeout bounds the wait for the lock.
//!
//! A write waits in the queue while the writer serves another
//! connection's write session (up to that session's lease), a migration,
//! or the writes before it. Past its limit it is answered `Overloaded` and
//! never runs, so its caller learns "not written" instead of waiting on,
//! or timing out with the outcome unknown. The writer thread looks while
//! it watches a session: it wakes at the first limit among the items
//! behind the session, and when the stage queues an item with a limit
//! (see [`Stage::flush`](super::stage::Stage)), which nudges the session's
//! link. Elsewhere the limit is looked at when the item's turn comes,
//! except in the first group after the writer thread woke from idle, which
//! waited behind nothing. A write cut short by the socket thread's slice
//! has started: it loses its limit (see `Stage::commit_here`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use scribe_protocol::WriteError;

use super::queue::Queue;
use super::run::Writer;
use super::stage::Stage;
use super::{Item, Msg};

/// How long an item may wait for the writer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Wait {
    /// When it must have started.
    pub(crate) by: Instant,
    /// The limit asked for, for the message.
    pub(crate) ms: u64,
}

impl Wait {
    /// The limit `ms` from now (`None`: no limit, or one too far to tell).
    pub(crate) fn from_ms(ms: Option<u64>) -> Option<Wait> {
        let ms = ms?;
        let by = Instant::now().checked_add(Duration::from_millis(ms))?;
        Some(Wait { by, ms })
    }
}

impl Item {
    /// Its limit on the wait, if it has one.
    pub(crate) fn wait(&self) -> Option<Wait> {
        match self {
            Item::Write(job) => job.wait,
            Item::Begin(link, _) => link.wait,
            Item::Replay(..) | Item::Migrate(..) => None,
        }
    }
}

impl Writer {
    /// When the writer thread watching session `id` must look next: at
    /// its lease's end, or sooner at the first limit of what waits behind
    /// it (answering those already past theirs); `None` once the session
    /// is over.
    pub(super) fn look_at(&mut self, id: u64, rx: &Queue<Msg>, stage: &Stage) -> Option<Instant> {
        let lapse = self.lapses_at(id)?;
        let limit = self.expire_overdue(rx, stage);
        Some(limit.map_or(lapse, |l| l.min(lapse)))
    }

    /// Moves what the queue holds behind the served session into
    /// `waiting` (in order: it is served from there once the session is
    /// over), answers the items whose limit has passed, and returns the
    /// first limit still to come.
    pub(super) fn expire_overdue(&mut self, rx: &Queue<Msg>, stage: &Stage) -> Option<Instant> {
        while let Some(msg) = rx.try_recv() {
            match msg {
                Msg::Jobs(items) => self.waiting.extend(items),
                Msg::Stop => self.stop_taken = true,
                // Pruning waits for the writer: once the session is over.
                Msg::Tick => self.tick_missed = true,
                // The writer thread is looking already.
                Msg::Attend => {}
            }
        }
        self.refuse_overdue(stage)
    }

    /// Answers the items of `waiting` whose limit has passed (they never
    /// run); returns the first limit still to come.
    pub(super) fn refuse_overdue(&mut self, stage: &Stage) -> Option<Instant> {
        // Most looks find nothing due: one pass, no allocation (and no
        // clock read when nothing waiting has a limit).
        let mut limits = self.waiting.iter().filter_map(Item::wait).peekable();
        limits.peek()?;
        let now = Instant::now();
        let mut first: Option<Instant> = None;
        let mut due = false;
        for w in limits {
            if w.by <= now {
                due = true;
            } else {
                first = Some(first.map_or(w.by, |f| f.min(w.by)));
            }
        }
        if !due {
            return first;
        }
        let behind = self.serving.as_ref().map_or_else(
            || {
                "the requests queued before it (other connections' writes or transactions)"
                    .to_owned()
            },
            |s| {
                format!(
                    "another connection's write transaction (session {} of pid {})",
                    s.link.id, s.link.peer.0
                )
            },
        );
        let mut kept = std::collections::VecDeque::with_capacity(self.waiting.len());
        let mut refused = 0;
        for item in std::mem::take(&mut self.waiting) {
            let Some(w) = item.wait().filter(|w| w.by <= now) else {
                kept.push_back(item);
                continue;
            };
            let e = refusal(w, &behind);
            match item {
                Item::Write(job) => self.answer(job.reply, Err(e), false),
                Item::Begin(link, began) => {
                    self.end_link(&link, format!("it never began: {e}"));
                    self.answer(began, Err(e), false);
                }
                // No limit: not here.
                other @ (Item::Replay(..) | Item::Migrate(..)) => {
                    kept.push_back(other);
                    continue;
                }
            }
            refused += 1;
            self.stats.overloaded();
        }
        self.waiting = kept;
        stage.queued.fetch_sub(refused, Ordering::AcqRel);
        tracing::debug!(refused, behind, "requests waited past their own limit");
        first
    }
}

/// The answer of an item that waited `w.ms` behind `behind`.
fn refusal(w: Wait, behind: &str) -> WriteError {
    WriteError::Busy {
        waited_ms: w.ms,
        behind: behind.to_owned(),
    }
}
