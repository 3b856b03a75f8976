//! The write sessions of one connection, for either adapter: a session
//! belongs to the connection that began it, and when the connection ends
//! (this registry is dropped) its open sessions are rolled back at once.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use scribe_protocol::{BeginRequest, Statement, WriteError, LATEST_SESSION};

use crate::state::Shared;
use crate::writer::{ReplyTo, SessionLink, SessionOp};

/// The sessions one connection has open.
#[derive(Debug)]
pub struct Sessions {
    shared: Arc<Shared>,
    peer: (i32, u32),
    open: HashMap<u64, Arc<SessionLink>>,
    /// The session most recently begun here (`None` when that begin was
    /// refused): what [`LATEST_SESSION`] names.
    latest: Option<u64>,
    /// The connection runs one request at a time (HTTP/1.1): a second
    /// session begun while one is open could only wait for that one's
    /// lease to lapse, its calls unable to come meanwhile.
    serial: bool,
}

impl Sessions {
    /// No sessions yet, for a connection from `peer` (pid, uid).
    pub fn new(shared: Arc<Shared>, peer: (i32, u32)) -> Sessions {
        Sessions {
            shared,
            peer,
            open: HashMap::new(),
            latest: None,
            serial: false,
        }
    }

    /// [`Sessions::new`] for a connection that runs one request at a time
    /// (HTTP/1.1 keep-alive): a begin while a session is open is refused.
    pub fn serial(shared: Arc<Shared>, peer: (i32, u32)) -> Sessions {
        let mut s = Sessions::new(shared, peer);
        s.serial = true;
        s
    }

    /// Queues a session's begin; `began` is answered when the writer
    /// serves it.
    ///
    /// # Errors
    ///
    /// `ShuttingDown` or `Overloaded`, as for a write; `Refused` on a
    /// serial connection that has a session open.
    pub fn begin(&mut self, request: BeginRequest, began: ReplyTo) -> Result<(), WriteError> {
        if self.serial {
            if let Some(open) = self.open.values().find(|link| !link.is_over()) {
                return Err(WriteError::Refused {
                    statement: None,
                    reason: format!(
                        "this connection already has session {} open: commit or roll it back \
                         first, or begin on another connection (one request at a time runs on a \
                         connection, so this begin would wait for that session's lease to lapse); \
                         nothing was begun",
                        open.id
                    ),
                });
            }
        }
        self.latest = None;
        // Begins refused in the queue (past their wait_ms, say) are over
        // before they began; a caller that retries them would otherwise
        // fill this map for as long as the connection lives.
        // So are sessions a commit ended since (a commit that could have
        // left them open kept their links).
        self.open
            .retain(|_, link| !link.never_served() && !link.ended_by_commit());
        let id = self.shared.sessions.fetch_add(1, Ordering::Relaxed) + 1;
        let link = SessionLink::new(id, self.peer, request);
        self.shared.writer.begin(link.clone(), began)?;
        self.open.insert(id, link);
        self.latest = Some(id);
        Ok(())
    }

    /// The session `session` names (see [`LATEST_SESSION`]).
    fn resolve(&self, session: u64) -> u64 {
        match session {
            LATEST_SESSION => self.latest.unwrap_or(LATEST_SESSION),
            id => id,
        }
    }

    fn link(&self, session: u64) -> Result<&Arc<SessionLink>, WriteError> {
        let id = self.resolve(session);
        self.open.get(&id).ok_or_else(|| unknown(id))
    }

    fn send(&self, link: &SessionLink, op: SessionOp) -> Result<(), WriteError> {
        self.shared
            .writer
            .session_call(link, op)
            .map_err(|(_, reason)| WriteError::Expired { reason })
    }

    /// Runs a statement in `session`.
    ///
    /// # Errors
    ///
    /// `Expired` when the session is over, `Protocol` when this connection
    /// does not have it (the answer then goes back to the caller at once,
    /// not to `to`).
    pub fn exec(&mut self, session: u64, st: Statement, to: ReplyTo) -> Result<(), WriteError> {
        self.send(self.link(session)?, SessionOp::Exec(st, to))
    }

    /// Runs `statements` in `session`, in order, as one call.
    ///
    /// # Errors
    ///
    /// As [`Sessions::exec`].
    pub fn exec_many(
        &mut self,
        session: u64,
        statements: Vec<Statement>,
        to: ReplyTo,
    ) -> Result<(), WriteError> {
        let many = crate::writer::Many::new(statements);
        self.send(self.link(session)?, SessionOp::ExecMany(many, to))
    }

    /// Commits `session`. On a connection that does not have it (the
    /// caller's first connection died with the answer), a commit with a
    /// key is answered from the key's record.
    ///
    /// # Errors
    ///
    /// As [`Sessions::exec`].
    pub fn commit(
        &mut self,
        session: u64,
        key: Option<String>,
        open_on_constraint: bool,
        to: ReplyTo,
    ) -> Result<(), WriteError> {
        if let Some(k) = &key {
            // Refused before the session is touched: it stays open.
            scribe_protocol::batch::check_key(k)?;
        }
        let id = self.resolve(session);
        // A commit that may leave the session open keeps its link here
        // (swept once the commit ended it: see `begin`).
        let link = if open_on_constraint {
            self.open.get(&id).cloned()
        } else {
            self.open.remove(&id)
        };
        match (link, key) {
            (Some(link), key) => self.send(&link, SessionOp::Commit(key, open_on_constraint, to)),
            // Behind a refused begin: fails with it, never a replay.
            (None, _) if id == LATEST_SESSION => Err(unknown(id)),
            (None, Some(key)) => self.shared.writer.replay(key, to),
            (None, None) => Err(unknown(id)),
        }
    }

    /// Rolls `session` back.
    ///
    /// # Errors
    ///
    /// As [`Sessions::exec`].
    pub fn rollback(&mut self, session: u64, to: ReplyTo) -> Result<(), WriteError> {
        let id = self.resolve(session);
        let link = self.open.remove(&id).ok_or_else(|| unknown(id))?;
        self.send(&link, SessionOp::Rollback(to))
    }
}

/// A session this connection does not have open: it already committed or
/// rolled back, or was begun elsewhere (a session belongs to the
/// connection that began it; a lapsed one still answers `Expired`).
fn unknown(session: u64) -> WriteError {
    if session == LATEST_SESSION {
        return WriteError::Protocol {
            message: "no session was begun on this connection (the begin sent with this call \
                      failed: its own answer says why)"
                .into(),
        };
    }
    WriteError::Protocol {
        message: format!(
            "this connection has no open session {session} (it was committed or rolled back \
             already, or was begun on another connection)"
        ),
    }
}

impl Sessions {
    /// The connection ended: every open session is rolled back at once
    /// (a session still waiting in the queue ends as soon as it begins).
    pub fn close_all(&mut self) {
        for (_, link) in self.open.drain() {
            // Its statement, if one runs, stops now rather than at the
            // end of the session's lease.
            self.shared.writer.cancel_session(link.id);
            link.close();
        }
    }
}

impl Drop for Sessions {
    fn drop(&mut self) {
        self.close_all();
    }
}
