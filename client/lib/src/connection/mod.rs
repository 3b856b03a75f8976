//! [`Connection`]: one connection to the arbiter, no retries.
//!
//! Requests are pipelined: every clone may call at once, each request
//! carries its own id, and one reader task hands each answer to its
//! caller. A request is written whole by the calling task (one system
//! call); the reader task takes every answer a read brings.
//!
//! - `calls.rs`: the typed calls (write, status, stop);
//! - `tasks.rs`: the reader and writer tasks;
//! - `spin.rs`: polling for an answer a moment before sleeping.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scribe_protocol::frame::{self, Answer, Request, CODEC_BINCODE};
use scribe_protocol::framebuf::FrameBuf;
use scribe_protocol::io::Socket;
use scribe_protocol::{Hello, Paths, Reply, WriteError, PROTOCOL_VERSION};
use tokio::net::UnixStream;
use tokio::sync::oneshot;

mod calls;
mod spin;
mod tasks;

pub(crate) use calls::unexpected;
use calls::unknown;
use tasks::{first_frame, read_answers, write_requests};

use crate::autostart;
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
    /// Connects (auto-starting the arbiter when `options.autostart` and
    /// nobody answers) and says hello.
    ///
    /// # Errors
    ///
    /// `Unavailable` with the reason when no arbiter answers; `Protocol`
    /// when its protocol version differs; `Overloaded` when it serves as
    /// many connections as it may; `Refused` when the arbiter answering
    /// serves another database file (a socket given for another one), or
    /// `Unavailable` when it serves the file a move or restore replaced.
    pub async fn connect(paths: &Paths, options: &Options) -> Result<Connection, WriteError> {
        // A connection can land on an arbiter that is just stopping (it
        // closes connections whose hello it has not read): try again,
        // for as long as an auto-start would be given.
        let deadline = Instant::now() + options.ready_timeout;
        loop {
            let stream = match autostart::try_connect(paths).await? {
                Some(s) => s,
                // One that is starting (migrations at open) is waited for
                // as the writer would be: up to the call's deadline.
                None => match autostart::wait_starting(paths, autostart::Waits::of(options)).await?
                {
                    Some(s) => s,
                    None if options.autostart => autostart::start(paths, options).await?.stream,
                    // An arbiter holds the database but takes no
                    // connection: its backlog is full, it is not absent.
                    None if scribe_protocol::lockfile::is_held(paths).unwrap_or(false) => {
                        return Err(WriteError::Unavailable {
                            reason: format!(
                                "an arbiter holds {} but does not accept connections on {} now \
                                 (it is too busy to accept): retry",
                                paths.db.display(),
                                paths.socket.display()
                            ),
                        })
                    }
                    None => {
                        return Err(WriteError::Unavailable {
                            reason: format!(
                                "no arbiter is running for {} (auto-start is off; run `scribe \
                                 start`)",
                                paths.db.display()
                            ),
                        })
                    }
                },
            };
            match Connection::handshake(stream, paths, options).await {
                Err(WriteError::Unavailable { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                other => return other,
            }
        }
    }

    /// Says hello on an already connected stream, and checks that the
    /// arbiter answering serves `paths.db`.
    ///
    /// # Errors
    ///
    /// As [`Connection::connect`].
    pub async fn handshake(
        stream: UnixStream,
        paths: &Paths,
        options: &Options,
    ) -> Result<Connection, WriteError> {
        let timeout = options.call_timeout.min(MAX_CALL_TIMEOUT);
        let stream = Arc::new(Socket::from_tokio(stream).map_err(|e| lost(&e.to_string()))?);
        let mut hello = frame::preamble(CODEC_BINCODE).to_vec();
        frame::encode(
            0,
            &Request::Hello {
                version: PROTOCOL_VERSION,
            },
            &mut hello,
        )?;
        // An arbiter at its connection cap answers before reading: a
        // failed write still leaves its answer to read.
        let sent = stream.write_all(&hello).await;
        let mut input = FrameBuf::new();
        let answer = tokio::time::timeout(timeout, first_frame(&stream, &mut input)).await;
        let reply = match answer {
            Ok(Ok(body)) => frame::decode_reply(&body)?,
            Ok(Err(e)) => {
                let why = sent.err().map_or(e.clone(), |s| s.to_string());
                return Err(lost(&why));
            }
            Err(_) => {
                return Err(WriteError::Timeout {
                    message: format!(
                        "no answer to hello within {}",
                        humantime::format_duration(timeout)
                    ),
                })
            }
        };
        let hello = match reply {
            Ok(Answer::Hello(h)) => h,
            // Its farewell before it read the hello: it stopped meanwhile
            // (gone, as when it closed at once; callers look again).
            Err(WriteError::ShuttingDown) => return Err(lost("the arbiter is stopping")),
            Ok(other) => {
                return Err(WriteError::Protocol {
                    message: format!("the arbiter answered hello with {other:?}"),
                })
            }
            Err(e) => return Err(e),
        };
        // Before anything is sent: a socket given by hand, or by an
        // environment meant for another program, may be another
        // database's arbiter's, which would take the writes and stop.
        if let Err(e) = hello.database.check(&paths.db, &paths.socket, hello.pid) {
            // Named by the socket it answered on (a recorded one, maybe).
            let via = scribe_protocol::reach::reach(paths, scribe_protocol::reach::Which::Rpc).path;
            return Err(match hello.database.check(&paths.db, &via, hello.pid) {
                Err(named) => named,
                Ok(()) => e,
            });
        }
        let calls = Arc::new(Calls::default());
        let out = Arc::new(Out::default());
        tokio::spawn(read_answers(
            stream.clone(),
            input,
            calls.clone(),
            out.clone(),
        ));
        tokio::spawn(write_requests(stream.clone(), out.clone(), calls.clone()));
        Ok(Connection {
            inner: Arc::new(Inner {
                hello,
                options: options.clone(),
                stream,
                out,
                calls,
                next_id: AtomicU32::new(1),
                spin: Mutex::default(),
            }),
        })
    }

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
            Ok(Ok(Err(why))) if is_write => Err(unknown(&why)),
            Ok(Ok(Err(why))) => Err(lost(&why)),
            Ok(Err(_)) if is_write => Err(unknown("the connection ended")),
            Ok(Err(_)) => Err(lost("the connection ended")),
            Err(_) => {
                self.inner.calls.lock().waiting.remove(&id);
                Err(WriteError::Timeout {
                    message: format!(
                        "no answer within {}; a write may or may not have committed \
                         (retry it with the same idempotency key)",
                        humantime::format_duration(timeout)
                    ),
                })
            }
        }
    }
}

#[cfg(test)]
#[path = "farewell_tests.rs"]
mod farewell_tests;
