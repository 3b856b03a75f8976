//! Sessions begun on the adapters' thread. When the writer is idle, a
//! session's begin runs there at once ([`begin_here`]); when a session
//! ends there and the next thing to serve is another session's begin, that
//! one begins there too, with the calls already sent with it
//! ([`Writer::hand_over`]; one session at most per call). Either way the
//! writer thread is only told to watch the new session's lease: its
//! wakeup, and the hand-over of the answers back to the adapters, are no
//! longer on the callers' path.

use std::sync::atomic::Ordering;
use std::sync::{Arc, TryLockError};
use std::time::Instant;

use super::commit::HERE_SLICE;
use super::link::SessionLink;
use super::queue::Queue;
use super::run::Writer;
use super::stage::Stage;
use super::{Item, Msg, ReplyTo};

/// Begins `link`'s session on this thread if the writer is idle (unlocked,
/// serving none, nothing waiting, queued or staged: the order of arrival
/// holds); else gives the begin back, for the queue.
pub(super) fn begin_here(
    stage: &Stage,
    rx: &Queue<Msg>,
    link: Arc<SessionLink>,
    began: ReplyTo,
) -> Result<(), (Arc<SessionLink>, ReplyTo)> {
    let mut w = match stage.writer().try_lock() {
        Ok(w) => w,
        Err(TryLockError::WouldBlock | TryLockError::Poisoned(_)) => return Err((link, began)),
    };
    if !w.idle() || !rx.is_empty() || !stage.is_empty() {
        return Err((link, began));
    }
    w.guarded(rx, "a session's begin", |w| {
        if w.begin_serving(link, began, true) {
            w.attend_elsewhere(rx);
        }
    });
    Ok(())
}

impl Writer {
    /// After a session ended on this (the adapters') thread: while the next
    /// thing to serve is another session's begin, begins it here and runs
    /// the calls already sent with it. Anything else is left to the writer
    /// thread.
    pub(super) fn hand_over(&mut self, rx: &Queue<Msg>, stage: &Stage) {
        self.begin_next_here(rx, stage);
        if self.serving.is_none() {
            self.poke_if_left(rx);
        }
    }

    /// Begins the next session here if a begin is the next thing to serve
    /// (one at most: a session that ends at once, all its calls sent with
    /// its begin, leaves the ones behind it to the writer thread, so one
    /// call never holds this thread for a chain of sessions).
    fn begin_next_here(&mut self, rx: &Queue<Msg>, stage: &Stage) {
        if self.finished || self.stop_taken {
            return;
        }
        while self.waiting.is_empty() {
            match rx.try_recv() {
                Some(Msg::Jobs(items)) => self.waiting.extend(items),
                Some(Msg::Attend) => {}
                Some(Msg::Stop) => {
                    self.stop_taken = true;
                    return;
                }
                Some(Msg::Tick) => {
                    // Housekeeping is the writer thread's: the tick goes
                    // back for it.
                    let _ = rx.send(Msg::Tick);
                    return;
                }
                None => return,
            }
        }
        // A begin past its own limit does not begin (nor does a write).
        self.refuse_overdue(stage);
        let (link, began) = match self.waiting.pop_front() {
            Some(Item::Begin(link, began)) => (link, began),
            Some(other) => {
                // Not a begin: the writer thread's, in its place.
                self.waiting.push_front(other);
                return;
            }
            None => return,
        };
        stage.queued.fetch_sub(1, Ordering::AcqRel);
        if !self.begin_serving(link.clone(), began, true) {
            return;
        }
        self.attend_elsewhere(rx);
        // The calls sent with the begin wait in its link; for one slice at
        // most, and none once the session's calls belong to the writer
        // thread: the rest wait there for it.
        let until = Instant::now() + HERE_SLICE;
        while self.serves(link.id) && !self.pinned() && Instant::now() < until {
            let Some(op) = link.next(Instant::now()) else {
                break;
            };
            if let Some(op) = self.call(op, true) {
                // Cut short by the slice: first in line for the writer
                // thread, which was told to attend.
                link.put_back(op);
                break;
            }
            link.ran();
        }
    }

    /// When work taken from the queue here is left for the writer thread,
    /// makes sure it looks: it may have been woken for what this thread
    /// took, found the queue empty, and slept again. (Also after a panic
    /// on this thread, whatever state it left.)
    pub(super) fn poke_if_left(&self, rx: &Queue<Msg>) {
        if self.serving.is_some() || !self.waiting.is_empty() || self.stop_taken {
            let _ = rx.send(Msg::Attend);
        }
    }

    /// Tells the writer thread to watch the session just begun here (it
    /// may be asleep on the queue); ends the session if that thread has
    /// gone, since nobody would end it at its lease.
    fn attend_elsewhere(&mut self, rx: &Queue<Msg>) {
        if rx.send(Msg::Attend).is_err() {
            self.end_session("the writer has stopped".into());
        }
    }
}
