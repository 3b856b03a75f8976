//! [`Connection`]: one connection to the arbiter, no retries.
//!
//! Requests are pipelined: every clone may call at once, each request
//! carries its own id, and one reader task hands each answer to its
//! caller. A request is written whole by the calling task (one system
//! call); the reader task takes every answer a read brings.
//!
//! - `open.rs`: connecting, with auto-start, and the hello;
//! - `calls.rs`: the typed calls (write, status, stop);
//! - `tasks.rs`: the reader and writer tasks;
//! - `spin.rs`: polling for an answer a moment before sleeping.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scribe_protocol::frame::{self, Answer, Request};
use scribe_protocol::io::Socket;
use scribe_protocol::{Hello, Reply, WriteError};
use tokio::sync::oneshot;

mod calls;
mod open;
mod spin;
mod tasks;

pub(crate) use calls::unexpected;
use calls::unknown;

use crate::options::{Options, MAX_CALL_TIMEOUT};

/// One connection to the arbiter of one database. Cheap to clone; clones
/// share the connection and may call concurrently (calls are pipelined).
/// [`Client`](crate::Client) adds reconnection and retries on top.
#[derive(Clone, Debug)]
pub struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    hello: Hello,
    options: Options,
    stream: Arc<Socket>,
    /// Requests waiting to be written by the connection's writer task.
    out: Arc<Out>,
    calls: Arc<Calls>,
    next_id: AtomicU32,
    /// Whether a lone caller polls for its answer before sleeping.
    spin: Mutex<scribe_protocol::spin::Backoff>,
}

impl Drop for Inner {
    /// The reader task holds the socket too: shut it down so that the
    /// arbiter sees the end, and the reader task ends with it.
    fn drop(&mut self) {
        self.out.lock().closed = true;
        self.out.notify.notify_one();
        self.stream.shutdown();
    }
}

/// Frames not yet written, and the ids of their requests.
#[derive(Debug, Default)]
struct Outgoing {
    bytes: Vec<u8>,
    ids: Vec<u32>,
    /// The connection was dropped: the writer task ends.
    closed: bool,
}

/// Requests gathered for the writer task: callers that are ready in the
/// same turn of the runtime share one write (one system call), and a
/// caller that gives up waiting never strands the others' requests.
#[derive(Debug, Default)]
struct Out {
    state: Mutex<Outgoing>,
    notify: tokio::sync::Notify,
}

impl Out {
    fn lock(&self) -> std::sync::MutexGuard<'_, Outgoing> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why a request's channel was closed without an answer: it never left.
const NOT_SENT: &str = "not sent: ";

/// Callers waiting for answers, and why the connection ended once it has.
#[derive(Debug, Default)]
struct Calls {
    state: Mutex<CallState>,
}

#[derive(Debug, Default)]
struct CallState {
    /// Each caller's channel: the answer, or why the connection ended.
    waiting: HashMap<u32, oneshot::Sender<Result<Reply, String>>>,
    ended: Option<String>,
    /// The arbiter said it stops, after answering every request it read:
    /// those still waiting when the connection ends were never read.
    farewell: bool,
}

/// Where a call's answer arrives.
type Waiting = oneshot::Receiver<Result<Reply, String>>;

impl Calls {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Queues `request` under id 0, whose answer is read as one to the whole
/// connection and dropped: for a request nobody waits for (a rollback of a
/// session its caller let go).
fn unanswered(out: &Out, request: &Request) {
    let mut o = out.lock();
    if o.closed {
        return;
    }
    let first = o.ids.is_empty();
    if frame::encode(0, request, &mut o.bytes).is_ok() {
        o.ids.push(0);
        if first {
            drop(o);
            out.notify.notify_one();
        }
    }
}

/// The connection ended before this request was answered.
fn lost(why: &str) -> WriteError {
    WriteError::Unavailable {
        reason: format!("connection to the arbiter lost: {why}"),
    }
}

impl Connection {
    /// Whether the connection has ended (the arbiter closed it, stopped or
    /// restarted): every call on it fails, and a new one is needed.
    pub fn is_closed(&self) -> bool {
        self.inner.calls.lock().ended.is_some()
    }

    /// The options this connection was made with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// What the arbiter said at hello (its version, pid and limits).
    pub fn hello(&self) -> &Hello {
        &self.inner.hello
    }

    /// Sends `request` and waits up to `timeout` for its answer.
    ///
    /// # Errors
    ///
    /// The arbiter's error; `Unavailable` when the connection is gone
    /// before the request left; `Timeout` when the deadline passed, or the
    /// connection was lost after a write was sent (its outcome is then
    /// unknown).
    pub async fn call(&self, request: &Request, timeout: Duration) -> Result<Answer, WriteError> {
        let [(id, rx)] = self.queue([request])?;
        self.answer(request, id, rx, timeout).await
    }

    /// Queues `request` to be sent, without waiting for its answer (a
    /// dropped transaction's rollback: nobody is left to wait).
    pub(crate) fn send_only(&self, request: &Request) {
        unanswered(&self.inner.out, request);
    }

    /// Sends two requests in one write (no other caller's frame between
    /// them) and waits for both answers: a session's begin and its first
    /// call.
    pub(crate) async fn call_pair(
        &self,
        first: (&Request, Duration),
        second: (&Request, Duration),
    ) -> (Result<Answer, WriteError>, Result<Answer, WriteError>) {
        let [(id1, rx1), (id2, rx2)] = match self.queue([first.0, second.0]) {
            Ok(q) => q,
            Err(e) => return (Err(e.clone()), Err(e)),
        };
        tokio::join!(
            self.answer(first.0, id1, rx1, first.1),
            self.answer(second.0, id2, rx2, second.1)
        )
    }

    /// Registers `requests` and encodes them, together, behind what is
    /// already waiting to be sent; returns each one's id and answer.
    fn queue<const N: usize>(
        &self,
        requests: [&Request; N],
    ) -> Result<[(u32, Waiting); N], WriteError> {
        let queued: [(u32, Waiting); N] = {
            let mut calls = self.inner.calls.lock();
            if let Some(why) = &calls.ended {
                return Err(lost(why));
            }
            std::array::from_fn(|_| {
                let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed).max(1);
                let (tx, rx) = oneshot::channel();
                calls.waiting.insert(id, tx);
                (id, rx)
            })
        };
        let first = {
            let mut out = self.inner.out.lock();
            let (bytes, ids) = (out.bytes.len(), out.ids.len());
            for (request, (id, _)) in requests.iter().zip(&queued) {
                if let Err(e) = frame::encode(*id, request, &mut out.bytes) {
                    // None of them goes: the others' frames are taken back.
                    out.bytes.truncate(bytes);
                    out.ids.truncate(ids);
                    drop(out);
                    let mut calls = self.inner.calls.lock();
                    for (id, _) in &queued {
                        calls.waiting.remove(id);
                    }
                    return Err(e);
                }
                out.ids.push(*id);
            }
            ids == 0
        };
        if first {
            self.inner.out.notify.notify_one();
        }
        Ok(queued)
    }

    /// Whether the caller about to wait polls first: when polling is on,
    /// it is the connection's only call, or one of a pair (a session's
    /// begin and its first call; with more in flight the runtime is not
    /// idle anyway), and the back-off allows.
    fn should_poll(&self) -> bool {
        !self.inner.options.spin.is_zero()
            && self.inner.calls.lock().waiting.len() <= 2
            && self
                .inner
                .spin
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .should_poll()
    }

    /// Waits for the answer to `request`, sent as `id`.
    async fn answer(
        &self,
        request: &Request,
        id: u32,
        rx: Waiting,
        timeout: Duration,
    ) -> Result<Answer, WriteError> {
        let timeout = timeout.min(MAX_CALL_TIMEOUT);
        // Requests whose effect may have happened although no answer came.
        let is_write = matches!(
            request,
            Request::Write(_) | Request::Commit { .. } | Request::Migrate(_)
        );
        // What makes asking again safe: a migration has no key, its
        // applied steps are recorded.
        let safe_again = match request {
            Request::Migrate(_) => "ask again: applied migrations are recorded, none runs twice",
            _ => "only a retry with the same idempotency key is safe",
        };
        let waited = async {
            if !self.should_poll() {
                return rx.await;
            }
            let (out, hit) = spin::poll_then_wait(rx, self.inner.options.spin).await;
            self.inner
                .spin
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(hit);
            out
        };
        match tokio::time::timeout(timeout, waited).await {
            Ok(Ok(Ok(reply))) => reply,
            Ok(Ok(Err(why))) if why.starts_with(NOT_SENT) => Err(lost(&why[NOT_SENT.len()..])),
            Ok(Ok(Err(why))) if is_write => Err(unknown(&why, safe_again)),
            Ok(Ok(Err(why))) => Err(lost(&why)),
            Ok(Err(_)) if is_write => Err(unknown("the connection ended", safe_again)),
            Ok(Err(_)) => Err(lost("the connection ended")),
            Err(_) => {
                self.inner.calls.lock().waiting.remove(&id);
                Err(WriteError::Timeout {
                    message: format!(
                        "no answer within {}; a write may or may not have committed ({})",
                        humantime::format_duration(timeout),
                        match request {
                            Request::Migrate(_) => safe_again,
                            _ => "retry it with the same idempotency key",
                        }
                    ),
                })
            }
        }
    }
}

#[cfg(test)]
#[path = "farewell_tests.rs"]
mod farewell_tests;
