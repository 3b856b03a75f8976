//! Where an answer goes: a connection's outbox (the RPC adapter), or a
//! one-shot channel (the HTTP adapter, tests).
//!
//! The writer thread answers a whole group at once; a connection's outbox
//! collects the answers for that connection and wakes its task once, so
//! the task writes them all with one system call.

use std::sync::{Arc, Mutex};

use scribe_protocol::{Answer, Reply};
use tokio::sync::{oneshot, Notify};

/// Answers waiting to be written to one connection.
#[derive(Debug, Default)]
pub struct Outbox {
    ready: Mutex<Vec<(u32, Reply)>>,
    /// Woken when the first answer arrives in an empty outbox.
    pub notify: Notify,
}

impl Outbox {
    /// A new, empty outbox.
    pub fn new() -> Arc<Outbox> {
        Arc::new(Outbox::default())
    }

    /// Adds an answer; wakes the connection's task if it was empty.
    pub fn push(&self, id: u32, reply: Reply) {
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        ready.push((id, reply));
        if ready.len() == 1 {
            drop(ready);
            self.notify.notify_one();
        }
    }

    /// Takes every answer waiting.
    pub fn take(&self, into: &mut Vec<(u32, Reply)>) {
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        into.append(&mut ready);
    }
}

/// Where the answer to one request goes.
#[derive(Debug)]
pub enum ReplyTo {
    /// Request `id` of the connection owning the outbox.
    Outbox(Arc<Outbox>, u32),
    /// A waiting task.
    Oneshot(oneshot::Sender<Reply>),
}

impl ReplyTo {
    /// Sends the answer (dropped if nobody waits any more).
    pub fn send(self, reply: Reply) {
        match self {
            ReplyTo::Outbox(outbox, id) => outbox.push(id, reply),
            ReplyTo::Oneshot(tx) => {
                let _ = tx.send(reply);
            }
        }
    }

    /// Sends a write's outcome.
    pub fn send_write(
        self,
        outcome: Result<scribe_protocol::Receipt, scribe_protocol::WriteError>,
    ) {
        self.send(outcome.map(Answer::Receipt));
    }
}
