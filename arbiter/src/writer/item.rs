//! What the writer's queue carries: writes, sessions' begins, replays,
//! migrations, and the messages around them.

use std::sync::Arc;

use scribe_protocol::WriteError;

use super::overdue::Wait;
use super::{ReplyTo, SessionLink};
use crate::group::Work;
use crate::inflight::Room;

/// One queued write and where to send its answer.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) work: Work,
    pub(crate) reply: ReplyTo,
    /// The memory the request holds, given back once it has run.
    pub(crate) _room: Option<Room>,
    /// Its caller's limit on the wait for the writer.
    pub(crate) wait: Option<Wait>,
}

/// One thing the writer does, in queue order.
#[derive(Debug)]
pub(crate) enum Item {
    /// A batch.
    Write(Job),
    /// A write session's begin: it is served alone when it reaches the
    /// front.
    Begin(Arc<SessionLink>, ReplyTo),
    /// A commit asked again by key on a connection that no longer has
    /// the session.
    Replay(String, ReplyTo),
    /// Schema migrations: served alone, like a session.
    Migrate(Vec<scribe_protocol::Migration>, ReplyTo),
}

impl Item {
    /// The write it carries, if it is one.
    pub(crate) fn into_job(self) -> Option<Job> {
        match self {
            Item::Write(job) => Some(job),
            _ => None,
        }
    }

    /// Answers it `ShuttingDown` (it will not run).
    pub(crate) fn refuse(self) {
        let to = match self {
            Item::Write(job) => job.reply,
            Item::Begin(link, to) => {
                // Calls sent with the begin wait in its link: refused too.
                for to in link.end("the arbiter is shutting down".into()) {
                    to.send(Err(WriteError::ShuttingDown));
                }
                to
            }
            Item::Replay(_, to) | Item::Migrate(_, to) => to,
        };
        to.send(Err(WriteError::ShuttingDown));
    }
}

#[derive(Debug)]
pub(crate) enum Msg {
    /// Writes and sessions, in the order they arrived.
    Jobs(Vec<Item>),
    /// Time for housekeeping (pruning idempotency keys) if it is due.
    Tick,
    /// Look at the writer's state: a session begun on the adapters'
    /// thread to watch, or items that thread took from the queue to serve.
    Attend,
    /// Finish what is queued before this, then exit.
    Stop,
}
