//! Connecting (auto-starting the arbiter when nobody answers) and the
//! hello that checks who answers.

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scribe_protocol::frame::{self, Answer, Request, CODEC_BINCODE};
use scribe_protocol::framebuf::FrameBuf;
use scribe_protocol::io::Socket;
use scribe_protocol::{Paths, WriteError, PROTOCOL_VERSION};
use tokio::net::UnixStream;

use super::tasks::{first_frame, read_answers, write_requests};
use super::{lost, Calls, Connection, Inner, Out};
use crate::autostart;
use crate::options::{Options, MAX_CALL_TIMEOUT};

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
}
