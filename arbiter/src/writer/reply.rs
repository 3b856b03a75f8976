//! Where an answer goes: a connection's outbox (the RPC adapter), or a
//! one-shot channel (the HTTP adapter, tests).
//!
//! The writer thread answers a whole group at once; a connection's outbox
//! collects the answers for that connection and wakes its task once, so
//! the task writes them all with one system call.

use std::sync::{Arc, Mutex};

use scribe_protocol::Reply;
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

/// Answers of a group, each with where it goes.
pub type Held = Vec<(ReplyTo, Reply)>;

/// How the writer (or the syncer) hands a group's answers over: on this
/// thread, or to a task of the adapters' runtime. One hand-over per group
/// wakes the runtime once, however many connections the answers go to;
/// answering each connection from the writer's thread would wake it once
/// per connection (a system call each).
#[derive(Clone, Debug)]
pub enum Answers {
    /// Send each answer from the calling thread (tests).
    Here,
    /// Hand the group to the runtime's dispatcher task.
    Runtime(tokio::sync::mpsc::UnboundedSender<Held>),
}

impl Answers {
    /// A hand-over to the runtime, and the receiving end for
    /// [`Answers::dispatch`].
    pub fn runtime() -> (Answers, tokio::sync::mpsc::UnboundedReceiver<Held>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Answers::Runtime(tx), rx)
    }

    /// Hands a group's answers over.
    pub fn send(&self, answers: Held) {
        match self {
            Answers::Runtime(tx) => {
                // The runtime may be gone (shutting down): nobody waits.
                let _ = tx.send(answers);
            }
            Answers::Here => {
                for (to, reply) in answers {
                    to.send(reply);
                }
            }
        }
    }

    /// The dispatcher task: sends every answer it is handed, on the
    /// runtime, until the writer and syncer are gone.
    pub async fn dispatch(mut rx: tokio::sync::mpsc::UnboundedReceiver<Held>) {
        while let Some(answers) = rx.recv().await {
            Answers::Here.send(answers);
        }
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
}
