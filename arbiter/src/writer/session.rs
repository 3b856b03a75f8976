//! A write session on the writer's thread: the writer serves it alone,
//! call by call, until it commits, rolls back, lapses, or its connection
//! ends. Batches that arrive meanwhile wait in the queue, in order.

use std::time::{Duration, Instant};

use scribe_protocol::{Answer, Began, Lease, Reply, SessionInfo, WriteError};
use tracing::{debug, info};

use super::link::{SessionLink, SessionOp};
use super::run::Writer;
use super::ReplyTo;
use crate::exec;

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

fn expired(why: &str) -> Reply {
    Err(WriteError::Expired {
        reason: why.to_owned(),
    })
}

impl Writer {
    /// Serves one session from its begin to its end.
    pub(super) fn run_session(&mut self, link: &SessionLink, began: ReplyTo) {
        let lease = self.session_limits.lease(link);
        if let Err(e) = self.session.begin_session() {
            self.answer(began, Err(e.clone()));
            self.end_session(link, format!("it could not begin: {e}"));
            return;
        }
        info!(session = link.id, pid = link.peer.0, "write session began");
        let started = Instant::now();
        let total = started + Duration::from_millis(lease.total_ms);
        let idle = Duration::from_millis(lease.idle_ms);
        self.stats.session(Some(SessionInfo {
            pid: link.peer.0,
            uid: link.peer.1,
            age_ms: 0,
            statements: 0,
        }));
        self.answer(
            began,
            Ok(Answer::Began(Began {
                session: link.id,
                lease,
            })),
        );
        let mut statements = 0u32;
        let why = loop {
            let Some(op) = link.next((Instant::now() + idle).min(total)) else {
                break if Instant::now() >= total {
                    format!("its total lease of {} ms lapsed", lease.total_ms)
                } else {
                    format!(
                        "it was idle for more than its lease of {} ms between two calls",
                        lease.idle_ms
                    )
                };
            };
            match op {
                SessionOp::Exec(st, to) => {
                    let (r, cut) = self.session.budget.run_until(total, || {
                        // A batch's text was checked when it was queued; a
                        // session's statement is checked here.
                        st.check_text(statements).and_then(|()| {
                            exec::run_one(&self.session.conn, &self.session.guard, statements, &st)
                        })
                    });
                    statements += 1;
                    self.stats.session_statement();
                    if cut {
                        self.answer(to, expired("its total lease lapsed while a statement ran"));
                        break format!(
                            "its total lease of {} ms lapsed while a statement ran",
                            lease.total_ms
                        );
                    }
                    if self.session.conn.is_autocommit() {
                        // SQLite undid the transaction itself (interrupt,
                        // disk full): the session cannot go on.
                        let e = r
                            .err()
                            .map_or_else(|| "SQLite ended it".into(), |e| e.to_string());
                        self.answer(to, expired(&e));
                        break format!("SQLite rolled it back: {e}");
                    }
                    self.answer(to, r.map(Answer::Executed));
                }
                SessionOp::Commit(key, to) => {
                    let started = Instant::now();
                    let r = self.session.commit_session(key.as_deref());
                    match &r {
                        Ok(receipt) => {
                            // Its key counts toward --max-keys like a batch's.
                            self.session.keys += u64::from(key.is_some());
                            self.stats.commit(receipt.seq, 1, 0, started.elapsed());
                            self.answer_durably(to, Ok(Answer::Receipt(receipt.clone())));
                        }
                        Err(e) => {
                            self.stats.failed(1);
                            self.answer(to, Err(e.clone()));
                        }
                    }
                    break match r {
                        Ok(_) => "it was committed".into(),
                        Err(e) => format!("its commit failed and it was rolled back: {e}"),
                    };
                }
                SessionOp::Rollback(to) => {
                    self.session.reset();
                    self.answer(to, Ok(Answer::RolledBack));
                    break "it was rolled back".into();
                }
                SessionOp::Closed => break "its connection ended".into(),
            }
        };
        debug!(session = link.id, statements, why, "write session ended");
        self.end_session(link, why);
    }

    fn end_session(&mut self, link: &SessionLink, why: String) {
        self.session.reset();
        self.session.guard.session(false);
        self.stats.session(None);
        for op in link.end(why.clone()) {
            match op {
                SessionOp::Exec(_, to) | SessionOp::Commit(_, to) | SessionOp::Rollback(to) => {
                    self.answer(to, expired(&why));
                }
                SessionOp::Closed => {}
            }
        }
    }

    /// Answers a commit by key on a connection that no longer has the
    /// session: the stored receipt if the commit happened, else why not.
    pub(super) fn replay_commit(&mut self, key: &str, to: ReplyTo) {
        let found = self
            .session
            .guard
            .trusted(|| crate::requests::find(&self.session.conn, &self.session.own, key));
        let reply = match found {
            Ok(Some((hash, mut receipt))) if hash == crate::group::SESSION_FINGERPRINT => {
                receipt.replayed = true;
                self.answer_durably(to, Ok(Answer::Receipt(receipt)));
                return;
            }
            // The key names a batch, not a session: its receipt is not
            // this commit's.
            Ok(Some(_)) => Err(WriteError::Conflict {
                statement: None,
                message: format!(
                    "idempotency key {key:?} was used by a write, not by a transaction's \
                     commit; this transaction was rolled back when its connection ended"
                ),
            }),
            Ok(None) => expired(&format!(
                "no session of this connection has that id, and no commit was recorded under \
                 key {key:?}: the transaction was rolled back when its connection ended"
            )),
            Err(e) => Err(e),
        };
        self.answer(to, reply);
    }
}
