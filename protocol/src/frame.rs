//! The arbiter's socket protocol: a preamble, then length-prefixed frames
//! in both directions, many requests in flight on one connection.
//!
//! ```text
//! caller → arbiter, once:  b"scribe" VERSION(u8) CODEC(u8)      (8 bytes)
//! every frame:              LEN(u32 LE) ID(u32 LE) BODY(LEN bytes)
//! ```
//!
//! The first request must be `Hello`. Each request carries an id chosen by
//! the caller; the answer carries the same id, and answers may come back in
//! any order. With the `b` codec a body is bincode (varint integers) of a
//! [`Request`] or of a `Result<`[`Answer`]`, `[`WriteError`]`>`; with the
//! `j` codec it is JSON (see `docs/protocol.md`). A frame over
//! [`MAX_FRAME_LEN`] ends the connection; an undecodable body is answered
//! `Protocol` under its id and the connection goes on.
//!
//! Decoding is bounded: a request's statements and parameter values are
//! counted while they are read ([`decode_request`]), so a frame cannot cost
//! more memory than its size and the limits allow.

use std::cell::Cell;

use bincode::Options as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::batch::{Batch, Statement};
use crate::limits::{Limits, MAX_FRAME_LEN};
use crate::migration::{MigrateReport, Migration};
use crate::receipt::StatementResult;
use crate::receipt::{Hello, Receipt, StopReport, StopRequest};
use crate::session::{Began, BeginRequest};
use crate::status::Status;
use crate::value::Value;
use crate::wire_error::WriteError;

/// The first six bytes of a connection.
pub const MAGIC: &[u8; 6] = b"scribe";
/// The framing version in the preamble (the request types are versioned
/// by the hello).
pub const FRAMING: u8 = 1;
/// Codec byte: bincode bodies.
pub const CODEC_BINCODE: u8 = b'b';
/// Codec byte: JSON bodies.
pub const CODEC_JSON: u8 = b'j';
/// Length of the preamble.
pub const PREAMBLE_LEN: usize = 8;
/// Length of a frame's header.
pub const HEADER_LEN: usize = 8;

/// The preamble for `codec`.
pub fn preamble(codec: u8) -> [u8; PREAMBLE_LEN] {
    let mut p = [0u8; PREAMBLE_LEN];
    p[..6].copy_from_slice(MAGIC);
    p[6] = FRAMING;
    p[7] = codec;
    p
}

/// The codec a preamble asks for.
///
/// # Errors
///
/// `Protocol` naming what was wrong.
pub fn check_preamble(p: &[u8; PREAMBLE_LEN]) -> Result<u8, WriteError> {
    let bad = |message: String| WriteError::Protocol { message };
    if &p[..6] != MAGIC {
        return Err(bad(
            "this socket speaks scribe's protocol (a preamble starting b\"scribe\"); HTTP \
             callers use <db>.scribe.http.sock"
                .into(),
        ));
    }
    if p[6] != FRAMING {
        return Err(bad(format!(
            "framing version {} is not this arbiter's ({FRAMING}); use a client and an arbiter \
             of the same release",
            p[6]
        )));
    }
    match p[7] {
        CODEC_BINCODE | CODEC_JSON => Ok(p[7]),
        c => Err(bad(format!("unknown codec {:?}", char::from(c)))),
    }
}

/// What a caller asks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Handshake: the caller's protocol version.
    Hello {
        /// [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION) of the caller.
        version: u32,
    },
    /// Queue a batch; answered once it is committed (or failed).
    Write(Batch),
    /// The arbiter's counters and settings.
    Status,
    /// Drain and exit; answered once the queue is drained.
    Stop(StopRequest),
    /// Begin a write session; answered once the writer serves it.
    Begin(BeginRequest),
    /// Run one statement in a session of this connection.
    Exec {
        /// The session.
        session: u64,
        /// The statement (its `expect_rows`, if set, is checked: a miss
        /// is a `Conflict` and the session goes on).
        statement: Statement,
    },
    /// Commit a session. With a key, the commit is recorded under it in
    /// the same transaction; a caller whose answer was lost asks again,
    /// by key, on any connection, and gets the stored receipt.
    Commit {
        /// The session.
        session: u64,
        /// Idempotency key of the commit.
        key: Option<String>,
        /// When deferred constraints (foreign keys) are unresolved, refuse
        /// the commit with SQLite's error and leave the session open, as
        /// SQLite's COMMIT does (the caller may fix the rows and commit
        /// again, or roll back); a commit that fails otherwise is then
        /// answered as rolled back. Without it, any failing commit rolls
        /// the session back.
        #[serde(default)]
        open_on_constraint: bool,
    },
    /// Roll a session back.
    Rollback {
        /// The session.
        session: u64,
    },
    /// Bring the schema up to the last of these migrations; answered once
    /// the database is there (or why it cannot be).
    Migrate(Vec<Migration>),
    /// Run statements in a session of this connection, in order, in one
    /// call (a DB-API `executemany`): answered as one `Exec` whose counts
    /// are the sum and whose rowid is the last statement's, or with the
    /// error of the first that fails; those before it stay done, those
    /// after it do not run.
    ExecMany {
        /// The session.
        session: u64,
        /// The statements (their `expect_rows`, if set, are checked).
        #[serde(deserialize_with = "crate::frame::bounded_statements")]
        statements: Vec<Statement>,
    },
}

impl Request {
    /// The request's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "hello",
            Request::Write(_) => "write",
            Request::Status => "status",
            Request::Stop(_) => "stop",
            Request::Begin(_) => "begin",
            Request::Exec { .. } => "exec",
            Request::Commit { .. } => "commit",
            Request::Rollback { .. } => "rollback",
            Request::Migrate(_) => "migrate",
            Request::ExecMany { .. } => "exec_many",
        }
    }
}

/// What the arbiter answers (the `Ok` side of a reply).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Answer {
    /// To `Hello`.
    Hello(Hello),
    /// To `Write`.
    Receipt(Receipt),
    /// To `Status`.
    Status(Box<Status>),
    /// To `Stop`.
    Stopped(StopReport),
    /// To `Begin`.
    Began(Began),
    /// To `Exec` and `ExecMany`.
    Executed(StatementResult),
    /// To `Rollback`.
    RolledBack,
    /// To `Migrate`.
    Migrated(MigrateReport),
}

/// A reply: an answer or a categorized error.
pub type Reply = Result<Answer, WriteError>;

/// The bincode options both sides decode with: varint integers (as
/// `DefaultOptions` encodes), a size limit.
fn options() -> impl bincode::Options {
    bincode::DefaultOptions::new().with_limit(MAX_FRAME_LEN as u64)
}

/// Appends one frame (header and bincode body of `msg`) to `out`.
///
/// # Errors
///
/// When `msg` cannot be encoded or would not fit in a frame.
pub fn encode<T: Serialize>(id: u32, msg: &T, out: &mut Vec<u8>) -> Result<(), WriteError> {
    use bincode::Options as _;
    let at = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    // One pass, stopped at the limit by the writer: bincode's own limit
    // would first walk the whole message to size it.
    let mut body = Capped {
        out: &mut *out,
        left: MAX_FRAME_LEN,
        over: false,
    };
    let encoded = bincode::DefaultOptions::new().serialize_into(&mut body, msg);
    let over = body.over;
    if let Err(e) = encoded {
        // Nothing of this frame stays in `out`: what follows must not be
        // read as its body.
        out.truncate(at);
        return Err(if over {
            WriteError::Refused {
                statement: None,
                reason: format!("a frame of more than {MAX_FRAME_LEN} bytes is over the limit"),
            }
        } else {
            WriteError::Protocol {
                message: format!("cannot encode a frame: {e}"),
            }
        });
    }
    let len = out.len() - at - HEADER_LEN;
    out[at..at + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out[at + 4..at + 8].copy_from_slice(&id.to_le_bytes());
    Ok(())
}

/// A frame's body being written: refuses the byte past the frame limit.
struct Capped<'a> {
    out: &'a mut Vec<u8>,
    left: usize,
    over: bool,
}

impl std::io::Write for Capped<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if bytes.len() > self.left {
            self.over = true;
            return Err(std::io::Error::other("over the frame limit"));
        }
        self.left -= bytes.len();
        self.out.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Appends one frame with a raw body (JSON) to `out`.
pub fn encode_raw(id: u32, body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(body);
}

/// A frame's header: body length and request id.
pub fn header(h: &[u8; HEADER_LEN]) -> (usize, u32) {
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let id = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    (len, id)
}

std::thread_local! {
    /// Counts left while one request decodes: (statements, values).
    static LEFT: Cell<(u64, u64)> = const { Cell::new((u64::MAX, u64::MAX)) };
}

/// Decodes a request body, refusing as soon as it holds more statements
/// or parameter values than `limits` allow (before allocating for them).
///
/// # Errors
///
/// `Protocol` for an undecodable body; `Refused` naming the limit.
pub fn decode_request(body: &[u8], limits: &Limits) -> Result<Request, WriteError> {
    LEFT.with(|l| l.set((limits.max_statements, limits.max_values)));
    let decoded = catch_panics(|| options().deserialize::<Request>(body));
    let left = LEFT.with(|l| l.replace((u64::MAX, u64::MAX)));
    match decoded {
        Ok(r) => Ok(r),
        Err(_) if left.0 == 0 => Err(over(
            "statements",
            limits.max_statements,
            "--max-statements",
        )),
        Err(_) if left.1 == 0 => Err(over("parameter values", limits.max_values, "--max-values")),
        Err(e) => Err(WriteError::Protocol {
            message: format!("undecodable request: {e}"),
        }),
    }
}

/// Runs a decoder; a panic in it is an undecodable body, not a crashed
/// connection task (decoding untrusted bytes must never take the
/// arbiter's thread down).
fn catch_panics<T>(f: impl FnOnce() -> bincode::Result<T>) -> bincode::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(Box::new(bincode::ErrorKind::Custom(
            "undecodable frame".into(),
        )))
    })
}

fn over(what: &str, limit: u64, flag: &str) -> WriteError {
    WriteError::Refused {
        statement: None,
        reason: format!("the request holds more {what} than the limit of {limit} ({flag})"),
    }
}

/// Decodes a reply body.
///
/// # Errors
///
/// `Protocol` for an undecodable body.
pub fn decode_reply(body: &[u8]) -> Result<Reply, WriteError> {
    options()
        .deserialize::<Reply>(body)
        .map_err(|e| WriteError::Protocol {
            message: format!("undecodable reply: {e}"),
        })
}

/// Takes `n` from the count left (index 0 statements, 1 values); false
/// when there is not that much left (the count is then 0).
fn take(which: usize, n: u64) -> bool {
    LEFT.with(|l| {
        let mut v = l.get();
        let slot = if which == 0 { &mut v.0 } else { &mut v.1 };
        let ok = *slot >= n;
        *slot = if ok { *slot - n } else { 0 };
        l.set(v);
        ok
    })
}

/// A sequence whose declared length is charged to the count `which`
/// before anything is allocated for it.
fn bounded_seq<'de, D, T>(d: D, which: usize) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(usize, std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let n = seq.size_hint().unwrap_or(0) as u64;
            if !take(self.0, n) {
                return Err(serde::de::Error::custom("over a limit"));
            }
            let mut out = Vec::with_capacity(n as usize);
            while let Some(x) = seq.next_element()? {
                out.push(x);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V(which, std::marker::PhantomData))
}

/// For `#[serde(deserialize_with)]` on a batch's statements.
///
/// # Errors
///
/// Past `--max-statements` while decoding a request.
pub fn bounded_statements<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    bounded_seq(d, 0)
}

/// For `#[serde(deserialize_with)]` on positional parameters.
///
/// # Errors
///
/// Past `--max-values` while decoding a request.
pub fn bounded_values<'de, D>(d: D) -> Result<Vec<Value>, D::Error>
where
    D: Deserializer<'de>,
{
    bounded_seq(d, 1)
}

/// For `#[serde(deserialize_with)]` on named parameters.
///
/// # Errors
///
/// Past `--max-values` while decoding a request.
pub fn bounded_named<'de, D>(d: D) -> Result<Vec<(String, Value)>, D::Error>
where
    D: Deserializer<'de>,
{
    bounded_seq(d, 1)
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
