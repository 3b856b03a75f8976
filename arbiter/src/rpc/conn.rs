//! One connection, from its preamble to its close.
//!
//! The loop waits for any of: bytes to read, answers from the writer, room
//! to write, a stop, silence. Reads take every frame they bring; answers
//! are written together, with as few system calls as the socket allows.
//! Each frame holds room in the shared memory budget from the moment its
//! header is read until its request has run.

use std::sync::Arc;

use scribe_protocol::frame::{self, PREAMBLE_LEN};
use scribe_protocol::framebuf::FrameBuf;
use scribe_protocol::io::Socket;
use scribe_protocol::{Reply, WriteError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::handle::{Handled, Requests};
use crate::inflight::Room;
use crate::peers::Admitted;
use crate::state::Shared;
use crate::writer::Outbox;

/// Encoded answers a connection may hold unsent before it stops reading
/// requests: a caller that pipelines writes and never reads its answers
/// (100 KB `RETURNING` rows each) grew the arbiter past 600 MB, outside
/// the in-flight budget, which counts requests only. What it sent before
/// is still answered; it is read again once its answers drain. Four
/// frames: a caller that sends a few requests before reading any answer
/// (a session's begin and first call) is never stopped halfway.
const MAX_UNSENT: usize = 4 * scribe_protocol::limits::MAX_FRAME_LEN;

/// Requests of one connection handed on and not answered yet before it
/// stops reading more: without it, requests read faster than they commit
/// all turned into unsent answers at once (a group's worth: more would not
/// commit together anyway).
const MAX_PENDING: usize = crate::config::MAX_GROUP;

/// Answers a connection that is not admitted with `error` (under id 0,
/// the hello's; in the codec its preamble names, when it comes within
/// [`crate::peers::REFUSAL_WAIT`]), then closes it.
pub async fn refuse(mut stream: UnixStream, error: WriteError) {
    let mut pre = [0u8; PREAMBLE_LEN];
    let read = tokio::time::timeout(crate::peers::REFUSAL_WAIT, stream.read_exact(&mut pre)).await;
    let codec = match read {
        Ok(Ok(_)) => frame::check_preamble(&pre).unwrap_or(frame::CODEC_BINCODE),
        _ => frame::CODEC_BINCODE,
    };
    let reply: Reply = Err(error);
    let mut out = Vec::new();
    if codec == frame::CODEC_JSON {
        let mut body = Vec::new();
        scribe_protocol::json_answer::write_reply(&reply, Default::default(), &mut body);
        frame::encode_raw(0, &body, &mut out);
    } else if frame::encode(0, &reply, &mut out).is_err() {
        return;
    }
    crate::peers::say_and_hang_up(&mut stream, &out).await;
}

/// Serves one admitted connection until it closes, goes silent, or the
/// arbiter stops.
pub async fn serve(
    mut stream: UnixStream,
    place: Admitted,
    shared: Arc<Shared>,
    closing: CancellationToken,
) {
    let _place = place;
    let hello = shared.config.hello_timeout;
    let mut pre = [0u8; PREAMBLE_LEN];
    match tokio::time::timeout(hello, stream.read_exact(&mut pre)).await {
        Ok(Ok(_)) => {}
        _ => return,
    }
    let codec = match frame::check_preamble(&pre) {
        Ok(c) => c,
        Err(e) => {
            let mut out = Vec::new();
            if frame::encode(0, &Reply::Err(e), &mut out).is_ok() {
                let _ = tokio::time::timeout(hello, stream.write_all(&out)).await;
            }
            return;
        }
    };
    let peer = stream
        .peer_cred()
        .map_or((0, 0), |c| (c.pid().unwrap_or(0), c.uid()));
    let Ok(stream) = Socket::from_tokio(stream) else {
        return;
    };
    let outbox = Outbox::new();
    let mut c = Conn {
        requests: Requests::new(shared.clone(), outbox.clone(), codec, peer),
        stream,
        input: FrameBuf::new(),
        front_room: None,
        out: Vec::new(),
        answers: Vec::new(),
        stall: None,
        unread: None,
    };
    c.run(&shared, &outbox, &closing).await;
}

struct Conn {
    requests: Requests,
    stream: Socket,
    input: FrameBuf,
    /// Room held for the frame at the front of `input`.
    front_room: Option<Room>,
    /// Encoded answers not yet written.
    out: Vec<u8>,
    answers: Vec<(u32, Reply)>,
    /// While answers wait for the caller to read: when the connection is
    /// closed unless a byte goes out first, or the caller reads some of
    /// what waits in the socket (see `stall`).
    stall: Option<Instant>,
    /// What the caller had not read at the last look.
    unread: Option<u64>,
}

/// Why the loop ends.
#[derive(Debug)]
enum End {
    Closed,
    Silent,
    Broken,
    /// The caller took none of its answers for `--send-timeout`.
    Stalled,
}

impl Conn {
    async fn run(&mut self, shared: &Shared, outbox: &Outbox, closing: &CancellationToken) {
        let idle = shared.config.idle_timeout;
        let mut silence = Instant::now() + shared.config.hello_timeout;
        let mut reading = true;
        // Said once the arbiter stops and everything read is answered.
        let mut farewell = false;
        let end = loop {
            if !reading && self.requests.pending() == 0 && self.out.is_empty() {
                if !farewell {
                    break End::Closed;
                }
                // Under id 0, after every answer: a request of the caller's
                // still unanswered was never read, so nothing of it was
                // written. Without it, a write sent in the last moment
                // looked lost with its outcome unknown (exit 11).
                farewell = false;
                self.answers.push((0, Err(WriteError::ShuttingDown)));
                if self.flush().is_err() {
                    break End::Broken;
                }
                continue;
            }
            tokio::select! {
                biased;
                () = closing.cancelled(), if reading => {
                    // Answer what was read; take nothing more.
                    reading = false;
                    farewell = true;
                    if self.read_now(shared).is_err() {
                        break End::Broken;
                    }
                }
                () = outbox.notify.notified() => {
                    outbox.take(&mut self.answers);
                    self.requests.answered(self.answers.len());
                    self.encode_answers();
                }
                r = self.stream.readable(), if reading
                    && self.out.len() < MAX_UNSENT
                    && self.requests.pending() < MAX_PENDING => {
                    if r.is_err() {
                        self.requests.peer_gone();
                        break End::Broken;
                    }
                    match self.read_now(shared) {
                        Ok(0) => {
                            reading = false;
                            self.requests.peer_gone();
                        }
                        Ok(_) => {
                            silence = Instant::now()
                                + if self.requests.greeted() { idle } else { shared.config.hello_timeout };
                        }
                        Err(()) => {
                            self.requests.peer_gone();
                            break End::Broken;
                        }
                    }
                    // A frame waiting for room holds up this connection
                    // (and only this one) until the budget has it.
                    while reading && self.input.pending_len().is_some() && self.front_room.is_none() {
                        if self.need_room(shared).await.is_err() {
                            reading = false;
                            break;
                        }
                        if self.take_frames(shared).is_err() {
                            reading = false;
                            break;
                        }
                    }
                }
                r = self.stream.writable(), if !self.out.is_empty() => {
                    if r.is_err() {
                        break End::Broken;
                    }
                }
                () = tokio::time::sleep_until(silence), if reading && self.requests.pending() == 0 => {
                    break End::Silent;
                }
                () = tokio::time::sleep_until(self.stall.unwrap_or(silence)), if self.stall.is_some() => {
                    use std::os::fd::AsRawFd;
                    let fd = self.stream.get_ref().as_raw_fd();
                    if !crate::stall::peer_read(fd, &mut self.unread) {
                        break End::Stalled;
                    }
                    // Still reading, however slowly: wait on.
                    self.stall = Some(Instant::now() + shared.config.send_timeout);
                }
            }
            if self.flush_within(shared.config.send_timeout).is_err() {
                break End::Broken;
            }
        };
        if matches!(end, End::Stalled) {
            warn!(
                pid = self.requests.pid(),
                waited = ?shared.config.send_timeout,
                "closed a connection whose caller read none of its answers"
            );
        }
        debug!(end = ?end, "connection ends");
        self.stream.shutdown();
    }

    /// Reads what the socket has now and handles every whole frame;
    /// `Ok(0)` at the end of the stream. Stops reading, with the socket
    /// still readable, when the frame at the front finds no room in the
    /// memory budget: no body is read, let alone handled, before its room
    /// is held.
    fn read_now(&mut self, shared: &Shared) -> Result<usize, ()> {
        let mut total = 0;
        loop {
            if self.input.pending_len().is_some() && self.front_room.is_none() {
                return Ok(total.max(1));
            }
            match self.stream.read_now(&mut self.input) {
                Ok(0) if total == 0 => return Ok(0),
                Ok(0) => return Ok(total),
                Ok(n) => {
                    total += n;
                    self.take_frames(shared)?;
                }
                // Nothing more now (tokio knows without a system call
                // once a short read has cleared the readiness).
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(total.max(1)),
                Err(_) => return Err(()),
            }
        }
    }

    /// Handles every whole frame in the input, each with its room in the
    /// budget; stops at a frame the budget has no room for now.
    fn take_frames(&mut self, shared: &Shared) -> Result<(), ()> {
        loop {
            let Some(len) = self.input.pending_len() else {
                return Ok(());
            };
            if len > scribe_protocol::limits::MAX_FRAME_LEN {
                let e = WriteError::Refused {
                    statement: None,
                    reason: format!(
                        "a frame of {len} bytes is over the {}-byte limit; the connection \
                         cannot go on",
                        scribe_protocol::limits::MAX_FRAME_LEN
                    ),
                };
                self.answers.push((0, Err(e)));
                self.encode_answers();
                return Err(());
            }
            if self.front_room.is_none() {
                // Most frames come whole in one read: no share to take.
                let room = if self.input.front_whole() {
                    shared.inflight.try_reserve_arrived(len as u64)
                } else {
                    shared.inflight.try_reserve(len as u64, self.requests.pid())
                };
                match room {
                    Some(room) => self.front_room = Some(room),
                    None => return Ok(()),
                }
            }
            let (id, body) = match self.input.next_frame() {
                Ok(Some(f)) => f,
                // The body is still on its way; its room is held.
                Ok(None) | Err(_) => return Ok(()),
            };
            let mut room = self.front_room.take();
            // Its body is in: its process's share is free for the next.
            if let Some(r) = room.as_mut() {
                r.arrived();
            }
            match self.requests.handle(id, body, room) {
                Handled::Now(reply) => self.answers.push((id, reply)),
                Handled::Later => {}
            }
        }
    }

    /// Holds room in the memory budget for the frame at the front, waiting
    /// for it if need be; past the wait the frame is answered `Overloaded`
    /// and the connection stops reading.
    async fn need_room(&mut self, shared: &Shared) -> Result<(), ()> {
        let Some(len) = self.input.pending_len() else {
            return Ok(());
        };
        if self.front_room.is_some() {
            return Ok(());
        }
        let bytes = len as u64;
        let room = match shared.inflight.try_reserve(bytes, self.requests.pid()) {
            Some(r) => r,
            None => match shared
                .inflight
                .reserve(bytes, shared.config.hello_timeout, self.requests.pid())
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    self.answers.push((0, Err(e)));
                    self.encode_answers();
                    return Err(());
                }
            },
        };
        self.front_room = Some(room);
        Ok(())
    }

    fn encode_answers(&mut self) {
        for (id, reply) in self.answers.drain(..) {
            self.requests.encode(id, &reply, &mut self.out);
        }
    }

    /// [`Conn::flush`], and the stall's deadline set afresh after any
    /// progress (cleared once everything is out).
    fn flush_within(&mut self, limit: std::time::Duration) -> Result<(), ()> {
        self.encode_answers();
        let before = self.out.len();
        let r = self.flush();
        if self.out.is_empty() {
            self.stall = None;
        } else if self.stall.is_none() || self.out.len() < before {
            self.stall = Some(Instant::now() + limit);
            use std::os::fd::AsRawFd;
            self.unread = crate::stall::unread(self.stream.get_ref().as_raw_fd());
        }
        r
    }

    /// Writes what it can of the encoded answers without waiting.
    fn flush(&mut self) -> Result<(), ()> {
        self.encode_answers();
        while !self.out.is_empty() {
            match self.stream.try_write(&self.out) {
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(_) => return Err(()),
            }
        }
        Ok(())
    }
}
