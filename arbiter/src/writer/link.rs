//! The link between a write session's connection and the writer: the
//! session's calls, in order, and why it ended once it has.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use scribe_protocol::{BeginRequest, Statement};

use super::overdue::Wait;
use super::queue::Queue;
use super::ReplyTo;

/// One call of a write session.
#[derive(Debug)]
pub enum SessionOp {
    /// Run a statement.
    Exec(Statement, ReplyTo),
    /// Run statements in order, stopping at the first that fails.
    ExecMany(super::many::Many, ReplyTo),
    /// Commit (recording the key, if any, with it); with `true`, one that
    /// deferred constraints refuse leaves the session open.
    Commit(Option<String>, bool, ReplyTo),
    /// Roll back.
    Rollback(ReplyTo),
    /// The connection ended: roll back at once.
    Closed,
}

impl SessionOp {
    /// Where its answer goes (`Closed` has none).
    pub fn into_reply_to(self) -> Option<ReplyTo> {
        match self {
            SessionOp::Exec(_, to)
            | SessionOp::ExecMany(_, to)
            | SessionOp::Commit(_, _, to)
            | SessionOp::Rollback(to) => Some(to),
            SessionOp::Closed => None,
        }
    }
}

/// A session's calls on their way to the writer.
#[derive(Debug)]
pub struct SessionLink {
    /// The session's id (unique in this arbiter's life).
    pub id: u64,
    /// The peer's process and user ids, for `status`.
    pub peer: (i32, u32),
    /// The lease asked for.
    pub request: BeginRequest,
    /// The begin's limit on the wait for the writer.
    pub(crate) wait: Option<Wait>,
    ops: Queue<SessionOp>,
    /// Calls sent through the queue and not yet run: a later call may run
    /// on the adapters' thread only when this is zero (order holds).
    pending: AtomicUsize,
    ended: OnceLock<String>,
    /// The writer began serving it (it may have ended since).
    served: AtomicBool,
    /// A commit ended it (committed, or failed and rolled back): its
    /// caller was told so in the commit's answer.
    ended_by_commit: AtomicBool,
}

impl SessionLink {
    /// A link for a new session.
    pub fn new(id: u64, peer: (i32, u32), request: BeginRequest) -> Arc<SessionLink> {
        Arc::new(SessionLink {
            id,
            peer,
            wait: Wait::from_ms(request.wait_ms),
            request,
            ops: Queue::default(),
            pending: AtomicUsize::new(0),
            ended: OnceLock::new(),
            served: AtomicBool::new(false),
            ended_by_commit: AtomicBool::new(false),
        })
    }

    /// Hands a call to the writer; once the session has ended, gives it
    /// back with the reason.
    ///
    /// # Errors
    ///
    /// The call and why the session ended.
    pub fn send(&self, op: SessionOp) -> Result<(), (SessionOp, String)> {
        self.pending.fetch_add(1, Ordering::AcqRel);
        self.ops.send(op).map_err(|op| {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            (op, self.why())
        })
    }

    /// The connection ended: the writer rolls the session back.
    pub fn close(&self) {
        let _ = self.send(SessionOp::Closed);
    }

    /// A call taken with [`SessionLink::next`] that did not run after all
    /// goes back to the front (still counted as pending).
    pub(super) fn put_back(&self, op: SessionOp) {
        if let Err(op) = self.ops.push_front(op) {
            // The session ended meanwhile: nobody will take it.
            if let Some(to) = op.into_reply_to() {
                to.send(Err(scribe_protocol::WriteError::Expired {
                    reason: self.why(),
                }));
            }
            self.ran();
        }
    }

    /// Calls sent and not yet run.
    pub(super) fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// The writer's side: a call taken from the queue has run.
    pub(super) fn ran(&self) {
        self.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// The writer's side: the session is served from now on.
    pub(super) fn mark_served(&self) {
        self.served.store(true, Ordering::Release);
    }

    /// It ended without ever being served (its begin was refused, or
    /// waited past its limit): nothing of it can be asked any more.
    pub fn never_served(&self) -> bool {
        self.ended.get().is_some() && !self.served.load(Ordering::Acquire)
    }

    /// The writer's side: a commit ended the session.
    pub(super) fn mark_ended_by_commit(&self) {
        self.ended_by_commit.store(true, Ordering::Release);
    }

    /// A commit ended it, and said so: nothing of it can be asked any
    /// more.
    pub fn ended_by_commit(&self) -> bool {
        self.ended_by_commit.load(Ordering::Acquire)
    }

    /// It has ended (committed, rolled back, lapsed, refused).
    pub fn is_over(&self) -> bool {
        self.ended.get().is_some()
    }

    /// Why the session ended.
    pub fn why(&self) -> String {
        self.ended
            .get()
            .cloned()
            .unwrap_or_else(|| "the session is over".into())
    }

    /// Wakes the writer thread watching this session (its next
    /// [`SessionLink::next`] returns `None` at once): something with a
    /// limit on its wait was queued behind the session.
    pub(super) fn nudge(&self) {
        self.ops.nudge();
    }

    /// The writer's side: the next call, waiting until `until`; `None`
    /// at `until`, after a nudge, or once the session has ended.
    pub(super) fn next(&self, until: std::time::Instant) -> Option<SessionOp> {
        self.ops.recv(Some(until))
    }

    /// The writer's side: the session is over; later calls are refused
    /// with `why`; returns where the calls that came too late are to be
    /// answered.
    pub(super) fn end(&self, why: String) -> Vec<ReplyTo> {
        let _ = self.ended.set(why);
        self.ops
            .close()
            .into_iter()
            .filter_map(SessionOp::into_reply_to)
            .collect()
    }
}
