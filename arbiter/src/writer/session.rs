//! A write session: the writer serves it alone, call by call, until it
//! commits, rolls back, lapses, or its connection ends. Batches that
//! arrive meanwhile wait in the queue, in order.
//!
//! The session is state of the writer, not a loop on its thread: a call
//! runs on whichever thread holds the writer's lock. The adapters' thread
//! runs it at once when the writer is free and the call is next in the
//! session's order ([`call_here`]), which spares the two hand-overs between
//! threads a call used to cost (a wakeup each, more CPU than a short
//! statement on a virtual machine); the writer thread, unlocked meanwhile,
//! only watches the lease and takes the calls that could not run there.
//! A long statement would hold up everything that thread does (status,
//! new connections, answers the syncer released, refusals, a stop): past
//! a slice it is interrupted there and run again on the writer thread,
//! which keeps the session from then on (`rebuild.rs`; a small group's
//! batch is moved likewise, see `Writer::commit_here`).

use std::sync::{Arc, TryLockError};
use std::time::{Duration, Instant};

use scribe_protocol::{Answer, Began, Lease, Reply, SessionInfo, WriteError};
use tracing::debug;

use super::link::{SessionLink, SessionOp};
use super::queue::Queue;
use super::run::Writer;
use super::stage::Stage;
use super::{Msg, ReplyTo};

/// The operator's caps on a session's lease.
#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    /// Longest wait between two calls.
    pub idle: Duration,
    /// Longest life.
    pub total: Duration,
}

impl SessionLimits {
    /// The lease for `request`, within these caps.
    fn lease(self, link: &SessionLink) -> Lease {
        let cap = |asked: Option<u64>, max: Duration| {
            let max = max.as_millis() as u64;
            asked.map_or(max, |a| a.clamp(1, max))
        };
        Lease {
            idle_ms: cap(link.request.idle_ms, self.idle),
            total_ms: cap(link.request.total_ms, self.total),
        }
    }
}

/// The session the writer serves.
#[derive(Debug)]
pub(super) struct Serving {
    pub(super) link: Arc<SessionLink>,
    pub(super) lease: Lease,
    pub(super) total: Instant,
    idle: Duration,
    /// When the last call ended (the idle lease runs from there).
    pub(super) last: Instant,
    pub(super) statements: u32,
    /// Its statements so far, to run again (`None` once past the bound,
    /// or once its calls stay on the writer thread).
    pub(super) history: Option<super::rebuild::History>,
    /// Its calls run on the writer thread only (one was cut short on the
    /// adapters' thread, or it is past what is kept).
    pub(super) pinned: bool,
    /// SQLite rolled its transaction back under a slice: put it back
    /// before the next call.
    pub(super) rebuild: bool,
}

impl Serving {
    /// When the lease lapses unless a call comes first.
    fn until(&self) -> Instant {
        (self.last + self.idle).min(self.total)
    }
}

pub(super) fn expired(why: &str) -> Reply {
    Err(expired_error(why))
}

/// The error of a session that ended, saying `why`.
pub(super) fn expired_error(why: &str) -> WriteError {
    WriteError::Expired {
        reason: why.to_owned(),
    }
}

/// Runs `op` of `link`'s session on this thread (the adapters') if the
/// writer is free, serves that session, and has no earlier call of it
/// still to run; else gives `op` back, for the link.
pub(super) fn call_here(
    stage: &Stage,
    rx: &Queue<Msg>,
    link: &SessionLink,
    op: SessionOp,
) -> Result<(), SessionOp> {
    let mut w = match stage.writer().try_lock() {
        Ok(w) => w,
        Err(TryLockError::WouldBlock | TryLockError::Poisoned(_)) => return Err(op),
    };
    // A lease that lapsed while the writer thread was still waking ends
    // here: the call then goes to the link, which refuses it.
    w.lapse_if_due();
    if !w.serves(link.id) || link.pending() > 0 || w.pinned() {
        return Err(op);
    }
    // After a panic the session ends (see `Writer::guarded`).
    let mut cut = None;
    w.guarded(rx, "a session's call", |w| {
        cut = w.call(op, true);
        if !w.serves(link.id) {
            // It ended here: the next session may begin here too.
            w.hand_over(rx, stage);
        }
    });
    // Cut short by the slice: the writer thread runs it (the link wakes it).
    cut.map_or(Ok(()), Err)
}

impl Writer {
    /// True while the writer serves session `id`.
    pub(super) fn serves(&self, id: u64) -> bool {
        self.serving.as_ref().is_some_and(|s| s.link.id == id)
    }

    /// When the served session `id` lapses; `None` once it is over.
    pub(super) fn lapses_at(&self, id: u64) -> Option<Instant> {
        self.serving
            .as_ref()
            .filter(|s| s.link.id == id)
            .map(Serving::until)
    }

    /// True when the served session's calls run on the writer thread only.
    pub(super) fn pinned(&self) -> bool {
        self.serving.as_ref().is_some_and(|s| s.pinned)
    }

    /// The session served, if any.
    pub(super) fn served(&self) -> Option<Arc<SessionLink>> {
        self.serving.as_ref().map(|s| s.link.clone())
    }

    /// Begins serving `link`'s session and answers `began` (`here`: from
    /// this thread, the adapters'); false when it could not begin (it is
    /// over then).
    pub(super) fn begin_serving(
        &mut self,
        link: Arc<SessionLink>,
        began: ReplyTo,
        here: bool,
    ) -> bool {
        let lease = self.session_limits.lease(&link);
        if let Err(e) = self.session.begin_session(link.request.foreign_keys) {
            self.answer(began, Err(e.clone()), here);
            self.session.reset();
            self.end_link(&link, format!("it could not begin: {e}"));
            return false;
        }
        // Debug, not info: a program running its transactions as sessions
        // begins thousands a second, and the log would grow by as many
        // lines (and the arbiter pay a write for each).
        debug!(session = link.id, pid = link.peer.0, "write session began");
        let now = Instant::now();
        self.stats.session(Some(SessionInfo {
            pid: link.peer.0,
            uid: link.peer.1,
            age_ms: 0,
            statements: 0,
        }));
        let id = link.id;
        link.mark_served();
        *self.watched.lock().unwrap_or_else(|p| p.into_inner()) = Some(link.clone());
        self.serving = Some(Serving {
            link,
            lease,
            total: now + Duration::from_millis(lease.total_ms),
            idle: Duration::from_millis(lease.idle_ms),
            last: now,
            statements: 0,
            history: Some(super::rebuild::History::default()),
            pinned: false,
            rebuild: false,
        });
        self.answer(began, Ok(Answer::Began(Began { session: id, lease })), here);
        true
    }

    /// Ends the served session if its lease has lapsed.
    pub(super) fn lapse_if_due(&mut self) {
        let Some(s) = &self.serving else {
            return;
        };
        let now = Instant::now();
        let why = if now >= s.total {
            format!("its total lease of {} ms lapsed", s.lease.total_ms)
        } else if now >= s.last + s.idle {
            format!(
                "it was idle for more than its lease of {} ms between two calls",
                s.lease.idle_ms
            )
        } else {
            return;
        };
        self.end_session(why);
    }

    /// Runs one call of the served session; `here`: on the adapters'
    /// thread, whose answers go out directly. Gives back a statement the
    /// slice cut short there (see `rebuild.rs`), for the writer thread.
    pub(super) fn call(&mut self, op: SessionOp, here: bool) -> Option<SessionOp> {
        let Some(s) = &self.serving else {
            // Not expected (a call is taken only while its session is
            // served), but never left unanswered.
            self.refuse(op, "the session is over");
            return None;
        };
        // Only a session whose statements are all kept can be cut short
        // here (and put back on the writer thread).
        let sliced = here && !s.pinned;
        if s.rebuild && !matches!(op, SessionOp::Rollback(_) | SessionOp::Closed) {
            if let Err(why) = self.rebuild() {
                if let Some(to) = op.into_reply_to() {
                    self.answer(to, expired(&why), here);
                }
                self.end_session(why);
                return None;
            }
        }
        let ended = match op {
            SessionOp::Exec(st, to) => match self.step(st, 0, sliced) {
                Err(st) => return Some(SessionOp::Exec(st, to)),
                Ok(step) => self.tell(step, to, here),
            },
            SessionOp::ExecMany(many, to) => match self.exec_many(many, sliced) {
                Err(many) => return Some(SessionOp::ExecMany(many, to)),
                Ok(step) => self.tell(step, to, here),
            },
            SessionOp::Commit(key, open_on_constraint, to) => {
                if open_on_constraint && self.session.deferred_constraints_pending() {
                    // SQLite's COMMIT refuses with the transaction left
                    // open: so does this one, asked to.
                    self.answer(to, Err(deferred_constraints()), here);
                    return None;
                }
                let started = Instant::now();
                let r = self.session.commit_session(key.as_deref());
                let why = match &r {
                    Ok(_) => "it was committed".into(),
                    Err(e) => format!("its commit failed and it was rolled back: {e}"),
                };
                if let Some(s) = &self.serving {
                    s.link.mark_ended_by_commit();
                }
                match r {
                    Ok(receipt) => {
                        self.stats.commit(receipt.seq, 1, 0, started.elapsed());
                        self.answer_durably(to, Ok(Answer::Receipt(receipt)), here);
                    }
                    Err(e) => {
                        self.stats.failed(1);
                        // Told apart from the refusal above, which leaves
                        // the session open.
                        let e = if open_on_constraint {
                            rolled_back(e)
                        } else {
                            e
                        };
                        self.answer(to, Err(e), here);
                    }
                }
                Some(why)
            }
            SessionOp::Rollback(to) => {
                self.session.reset();
                self.answer(to, Ok(Answer::RolledBack), here);
                Some("it was rolled back".into())
            }
            SessionOp::Closed => Some("its connection ended".into()),
        };
        if let Some(why) = ended {
            self.end_session(why);
        }
        None
    }

    /// Answers a call of a session that is over `Expired`, saying why.
    pub(super) fn refuse(&self, op: SessionOp, why: &str) {
        if let Some(to) = op.into_reply_to() {
            self.answer(to, expired(why), false);
        }
    }

    /// Ends `link` with `why`, refusing the calls that came too late.
    pub(super) fn end_link(&self, link: &SessionLink, why: String) {
        for to in link.end(why.clone()) {
            self.answer(to, expired(&why), false);
        }
    }

    /// The served session is over: rolls back what is left of it, and
    /// refuses its later calls with `why`.
    pub(super) fn end_session(&mut self, why: String) {
        let Some(s) = self.serving.take() else {
            return;
        };
        *self.watched.lock().unwrap_or_else(|p| p.into_inner()) = None;
        debug!(
            session = s.link.id,
            statements = s.statements,
            why,
            "write session ended"
        );
        self.session.reset();
        self.session.guard.session(false);
        self.stats.session(None);
        self.end_link(&s.link, why);
    }

    /// Answers a commit by key on a connection that no longer has the
    /// session: the stored receipt if the commit happened, else why not.
    pub(super) fn replay_commit(&mut self, key: &str, to: ReplyTo) {
        let found = self.session.find_key(self.session.keys.key(key));
        let reply = match found {
            Ok(Some((hash, mut receipt))) if hash == crate::group::SESSION_FINGERPRINT => {
                receipt.replayed = true;
                self.answer_durably(to, Ok(Answer::Receipt(receipt)), false);
                return;
            }
            // The key names a batch, not a session: its receipt is not
            // this commit's.
            Ok(Some(_)) => Err(WriteError::Conflict {
                statement: None,
                message: format!(
                    "idempotency key {key:?} was used by a write, not by a transaction's \
                     commit; this transaction ended without a commit (its lease lapsed or its connection \
                     ended) and was rolled back"
                ),
            }),
            Ok(None) => expired(&format!(
                "no session of this connection has that id, and no commit was recorded under \
                 key {key:?}: the transaction ended without a commit (its lease lapsed or its \
                 connection ended) and was rolled back"
            )),
            Err(e) => Err(e),
        };
        self.answer(to, reply, false);
    }
}

/// SQLite's error for a COMMIT that unresolved deferred foreign keys
/// refuse.
fn deferred_constraints() -> WriteError {
    WriteError::Sql {
        statement: None,
        code: rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY,
        message: "FOREIGN KEY constraint failed".into(),
    }
}

/// A commit's SQL error, said as one after which the session is over.
fn rolled_back(e: WriteError) -> WriteError {
    match e {
        WriteError::Sql {
            statement,
            code,
            message,
        } => WriteError::RolledBack {
            statement,
            code,
            message,
        },
        other => other,
    }
}
