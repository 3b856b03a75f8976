//! One request of a connection: decoded, then answered at once (hello,
//! status, anything refused) or handed on (a write to the writer's queue,
//! a stop to the drain) to be answered through the connection's outbox.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use scribe_protocol::frame::{self, Answer, Request, CODEC_JSON};
use scribe_protocol::{Hello, Reply, StopReport, Undone, WriteError, PROTOCOL_VERSION};

use crate::inflight::Room;
use crate::sessions::Sessions;
use crate::state::{Shared, StopReason};
use crate::writer::{Outbox, ReplyTo};

/// What became of a request.
pub enum Handled {
    /// Answered now.
    Now(Reply),
    /// Answered later, through the outbox.
    Later,
}

/// The requests of one connection.
pub struct Requests {
    shared: Arc<Shared>,
    outbox: Arc<Outbox>,
    codec: u8,
    greeted: bool,
    pending: usize,
    sessions: Sessions,
    /// What a JSON caller asked for in its hello.
    json: scribe_protocol::json_frame::HelloOptions,
    /// The peer's process id (who calls, for the socket thread's polling).
    pid: i32,
    /// The ids of a JSON caller's session statements not answered yet:
    /// their errors say that what ran before them stands.
    statement_calls: Vec<u32>,
}

impl Requests {
    pub fn new(shared: Arc<Shared>, outbox: Arc<Outbox>, codec: u8, peer: (i32, u32)) -> Requests {
        Requests {
            sessions: Sessions::new(shared.clone(), peer),
            shared,
            outbox,
            codec,
            greeted: false,
            pending: 0,
            json: scribe_protocol::json_frame::HelloOptions::default(),
            pid: peer.0,
            statement_calls: Vec::new(),
        }
    }

    fn to(&self, id: u32) -> ReplyTo {
        ReplyTo::Outbox(self.outbox.clone(), id)
    }

    fn later_or(&mut self, queued: Result<(), WriteError>) -> Handled {
        match queued {
            Ok(()) => self.later(),
            Err(e) => Handled::Now(Err(e)),
        }
    }

    /// Requests handed on and not answered yet.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// The peer's process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The peer has gone: roll its sessions back now.
    pub fn peer_gone(&mut self) {
        self.sessions.close_all();
    }

    /// True once the hello was accepted.
    pub fn greeted(&self) -> bool {
        self.greeted
    }

    /// `n` answers came back through the outbox.
    pub fn answered(&mut self, n: usize) {
        self.pending = self.pending.saturating_sub(n);
        self.shared.in_flight.fetch_sub(n, Ordering::AcqRel);
    }

    fn later(&mut self) -> Handled {
        self.pending += 1;
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        Handled::Later
    }

    /// Appends the frame of one answer to `out`.
    pub fn encode(&mut self, id: u32, reply: &Reply, out: &mut Vec<u8>) {
        if self.codec == CODEC_JSON {
            let mut body = Vec::new();
            let statement = match self.statement_calls.iter().position(|&i| i == id) {
                Some(at) => {
                    self.statement_calls.swap_remove(at);
                    true
                }
                None => false,
            };
            match reply {
                Err(e) if statement => {
                    let error = scribe_protocol::json_frame::error_reply(e, Undone::Statement);
                    // A `Value` always serializes.
                    let _ = serde_json::to_writer(&mut body, &error);
                }
                _ => scribe_protocol::json_answer::write_reply(reply, self.json, &mut body),
            }
            if body.len() > scribe_protocol::limits::MAX_FRAME_LEN {
                // Too big to send: say so, as the bincode side does.
                let too_big: Reply = Err(WriteError::Refused {
                    statement: None,
                    reason: format!(
                        "the answer is {} bytes, over the {}-byte frame limit",
                        body.len(),
                        scribe_protocol::limits::MAX_FRAME_LEN
                    ),
                });
                body.clear();
                scribe_protocol::json_answer::write_reply(&too_big, self.json, &mut body);
            }
            frame::encode_raw(id, &body, out);
            return;
        }
        if let Err(e) = frame::encode(id, reply, out) {
            // Too big to send (a receipt past the frame limit): say so.
            let _ = frame::encode(id, &Reply::Err(e), out);
        }
    }

    /// Decodes and handles one request.
    pub fn handle(&mut self, id: u32, body: &[u8], room: Option<Room>) -> Handled {
        let limits = &self.shared.config.limits;
        let request = if self.codec == CODEC_JSON {
            scribe_protocol::json_frame::request(body, limits)
        } else {
            frame::decode_request(body, limits)
        };
        let request = match request {
            Ok(r) => r,
            Err(e) => return Handled::Now(Err(e)),
        };
        if !self.greeted && !matches!(request, Request::Hello { .. }) {
            return Handled::Now(Err(WriteError::Protocol {
                message: "the first request on a connection must be hello".into(),
            }));
        }
        // A call with more than one other of its connection still in
        // flight is not a one-at-a-time caller's: the socket thread has
        // work without polling for it (see `spin`). One other is a
        // session's begin sent with its first statement.
        let lone = if self.pending <= 1 {
            self.pid
        } else {
            crate::spin::NOT_ALONE
        };
        self.shared.touch_from(lone);
        match request {
            Request::Hello { version } => {
                if self.codec == CODEC_JSON {
                    self.json = scribe_protocol::json_frame::hello_options(body);
                }
                Handled::Now(self.hello(version))
            }
            Request::Status => Handled::Now(Ok(Answer::Status(Box::new(self.shared.status())))),
            Request::Write(batch) => {
                let r = self.shared.writer.enqueue(batch, self.to(id), room);
                self.later_or(r)
            }
            Request::Begin(b) => {
                let r = self.sessions.begin(b, self.to(id));
                self.later_or(r)
            }
            Request::Exec { session, statement } => {
                self.statement_call(id);
                let r = self.sessions.exec(session, statement, self.to(id));
                self.later_or(r)
            }
            Request::ExecMany {
                session,
                statements,
            } => {
                self.statement_call(id);
                let r = self.sessions.exec_many(session, statements, self.to(id));
                self.later_or(r)
            }
            Request::Commit {
                session,
                key,
                open_on_constraint,
            } => {
                let r = self
                    .sessions
                    .commit(session, key, open_on_constraint, self.to(id));
                self.later_or(r)
            }
            Request::Migrate(list) => {
                let r = self.shared.writer.migrate(list, self.to(id));
                self.later_or(r)
            }
            Request::Rollback { session } => {
                let r = self.sessions.rollback(session, self.to(id));
                self.later_or(r)
            }
            Request::Stop(stop) => {
                tracing::info!(hold = stop.hold, grace_ms = ?stop.grace_ms, "stop requested");
                self.shared.begin_shutdown(StopReason::Requested(stop));
                let (shared, outbox) = (self.shared.clone(), self.outbox.clone());
                tokio::spawn(async move {
                    let mut drained = shared.drained.subscribe();
                    let drained = match drained.wait_for(Option::is_some).await {
                        Ok(v) => v.unwrap_or(0),
                        Err(_) => 0,
                    };
                    outbox.push(
                        id,
                        Ok(Answer::Stopped(StopReport {
                            drained,
                            pid: std::process::id(),
                        })),
                    );
                });
                self.later()
            }
        }
    }

    /// Notes a JSON caller's session statement, whose answer `encode`
    /// words for a statement.
    fn statement_call(&mut self, id: u32) {
        if self.codec == CODEC_JSON {
            self.statement_calls.push(id);
        }
    }

    fn hello(&mut self, version: u32) -> Reply {
        if version != PROTOCOL_VERSION {
            tracing::warn!(
                client = version,
                server = PROTOCOL_VERSION,
                "protocol mismatch"
            );
            return Err(WriteError::Protocol {
                message: format!(
                    "client speaks protocol version {version}, this arbiter speaks version \
                     {PROTOCOL_VERSION}; use a client and an arbiter of the same release"
                ),
            });
        }
        self.greeted = true;
        Ok(Answer::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            server_version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            limits: self.shared.config.limits.clone(),
            database: self.shared.db_file.served(&self.shared.config.paths.db),
        }))
    }
}
