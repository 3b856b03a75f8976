//! The tasks behind a [`Connection`](super::Connection): one writes the
//! requests callers queued (all of a turn in one system call), one reads
//! answers and hands each to its caller; when either ends, every caller
//! still waiting is told why.

use std::sync::Arc;

use scribe_protocol::framebuf::FrameBuf;
use scribe_protocol::io::Socket;

use scribe_protocol::{frame, WriteError};

use super::{Calls, Out, Outgoing, NOT_SENT};

/// Reads until the first whole frame; returns its body.
pub(super) async fn first_frame(stream: &Socket, input: &mut FrameBuf) -> Result<Vec<u8>, String> {
    loop {
        if let Some((_, body)) = input.next_frame().map_err(|e| format!("{e:?}"))? {
            return Ok(body.to_vec());
        }
        match stream.read_some(input).await {
            Ok(0) => return Err("the arbiter closed the connection".into()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Writes the gathered requests, all of them at once, until the
/// connection is dropped. When the write fails before any byte left,
/// callers learn that their request never left (a retry is safe);
/// otherwise some of the requests may have arrived whole, and each caller
/// hears only that the connection failed (for a write or a commit, the
/// outcome is then unknown).
pub(super) async fn write_requests(stream: Arc<Socket>, out: Arc<Out>, calls: Arc<Calls>) {
    // The last write's buffers, emptied, go back for the next requests
    // with their room: taken away empty, the buffer of a one-row insert
    // grew from nothing for every request, four reallocations each (a
    // tenth of the client's instructions per write, callgrind).
    let mut taken = Outgoing::default();
    loop {
        out.notify.notified().await;
        // Let every caller that is ready in this turn add its request.
        tokio::task::yield_now().await;
        {
            let mut o = out.lock();
            if o.closed {
                return;
            }
            std::mem::swap(&mut o.bytes, &mut taken.bytes);
            std::mem::swap(&mut o.ids, &mut taken.ids);
        }
        if taken.ids.is_empty() {
            continue;
        }
        if let Err((sent, e)) = stream.write_all_counted(&taken.bytes).await {
            let why = if sent == 0 {
                format!("{NOT_SENT}{e}")
            } else {
                e.to_string()
            };
            let mut c = calls.lock();
            let farewell = c.farewell;
            for id in taken.ids.drain(..) {
                if let Some(tx) = c.waiting.remove(&id) {
                    let _ = tx.send(left_waiting(farewell, &why));
                }
            }
        }
        taken.ids.clear();
        if taken.bytes.capacity() > KEPT_BYTES {
            // A large batch's room is not kept for the connection's life.
            taken.bytes = Vec::new();
        } else {
            taken.bytes.clear();
        }
    }
}

/// The most room the writer task keeps between writes.
const KEPT_BYTES: usize = 64 << 10;

/// Hands each answer to its caller until the connection ends; then every
/// caller still waiting learns that it ended.
pub(super) async fn read_answers(
    stream: Arc<Socket>,
    mut input: FrameBuf,
    calls: Arc<Calls>,
    out: Arc<Out>,
) {
    let why = loop {
        loop {
            match input.next_frame() {
                Ok(Some((id, body))) => {
                    let reply = frame::decode_reply(body);
                    // Id 0 answers no request: the arbiter speaks to the
                    // whole connection (it is closing it, and says why).
                    if id == 0 {
                        if let Ok(Err(e)) = &reply {
                            tracing::debug!(error = %e, "the arbiter closes the connection");
                            if matches!(e, WriteError::ShuttingDown) {
                                calls.lock().farewell = true;
                            }
                        }
                        continue;
                    }
                    let waiting = calls.lock().waiting.remove(&id);
                    let unheard = match waiting {
                        Some(tx) => tx.send(Ok(reply.unwrap_or_else(Err))).err(),
                        None => Some(Ok(reply.unwrap_or_else(Err))),
                    };
                    // A session begun for a caller that stopped waiting (its
                    // begin timed out, its future was dropped) would hold
                    // the writer until its idle lease lapsed: roll it back.
                    if let Some(Ok(Ok(frame::Answer::Began(b)))) = unheard {
                        super::unanswered(&out, &frame::Request::Rollback { session: b.session });
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    end(
                        &calls,
                        format!("a frame of {} bytes is over the limit", e.0),
                    );
                    return;
                }
            }
        }
        match stream.read_some(&mut input).await {
            Ok(0) => break "the arbiter closed the connection".to_owned(),
            Ok(_) => {}
            Err(e) => break e.to_string(),
        }
    };
    end(&calls, why);
}

fn end(calls: &Calls, why: String) {
    let (waiting, farewell) = {
        let mut c = calls.lock();
        c.ended = Some(why.clone());
        (std::mem::take(&mut c.waiting), c.farewell)
    };
    for (_, tx) in waiting {
        let _ = tx.send(left_waiting(farewell, &why));
    }
}

/// What a call still waiting when the connection ended learns: after the
/// arbiter's farewell (said after every answer to what it read), that it
/// was never read, so nothing of it was written and a retry is safe;
/// else why the connection ended.
fn left_waiting(farewell: bool, why: &str) -> Result<scribe_protocol::Reply, String> {
    if farewell {
        Ok(Err(WriteError::ShuttingDown))
    } else {
        Err(why.to_owned())
    }
}
