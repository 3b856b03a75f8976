//! The JSON codec of the socket protocol (codec byte `j`), for callers in
//! languages without bincode: the same requests and answers as JSON
//! objects, in the same frames.
//!
//! | request | answer (`ok`) |
//! | --- | --- |
//! | `{"hello":{"version":2}}` | `{"protocol_version","server_version","pid","limits"}` |
//! | `{"write":{"statements":[..],"key":".."}}` (as `POST /v1/write`) | the receipt, as HTTP answers it |
//! | `{"status":{}}` | the status |
//! | `{"stop":{"hold":false,"grace_ms":null}}` | `{"drained","pid"}` |
//! | `{"begin":{"idle_ms":null,"total_ms":null}}` | `{"session","idle_ms","total_ms"}` |
//! | `{"exec":{"session":N,"statement":{"sql":..,"params":..}}}` | the statement's result |
//! | `{"commit":{"session":N,"key":null}}` | the receipt |
//! | `{"rollback":{"session":N}}` | `{}` |
//! | `{"migrate":{"migrations":[{"version","name","sql","foreign_keys_off"}]}}` | `{"before","after","applied","newer","seq"}` |
//!
//! Every answer is `{"ok": ..}` or `{"error": {"category", "message", ..}}`
//! (the HTTP error body).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{json, Value as Json};

use crate::frame::{Answer, Reply, Request};
use crate::limits::Limits;
use crate::{json, json_body, StopRequest, WriteError};

fn bad(message: String) -> WriteError {
    WriteError::Protocol { message }
}

/// Decodes one JSON request, in one pass: the body of a `write` (and of
/// an `exec_many`) is read into its batch where it stands (it was first skipped over to find the
/// request's one key, then read again: a third of the decoding of a
/// one-row write from Python, callgrind); the others' bodies are taken
/// whole and decoded by [`operation`].
///
/// # Errors
///
/// `Protocol` for a malformed request; `Refused` past a limit.
pub fn request(body: &[u8], limits: &Limits) -> Result<Request, WriteError> {
    let seed = RequestSeed {
        limits,
        in_write: Cell::new(false),
        failed: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let out = (&seed)
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r));
    out.map_err(|e| match seed.failed.take() {
        Some(failed) => failed,
        None if seed.in_write.get() => json_body::decode_error(&e, "malformed JSON body"),
        None => bad(format!("a request is a JSON object with one key: {e}")),
    })
}

/// What the one key of a request object must be.
const ONE_KEY: &str =
    "a request is a JSON object with exactly one key: hello, write, status or stop";

/// Reads a request object; a failure that is already a [`WriteError`]
/// waits in `failed`, and `in_write` tells a batch's malformed body from
/// a malformed request.
struct RequestSeed<'l> {
    limits: &'l Limits,
    in_write: Cell<bool>,
    failed: RefCell<Option<WriteError>>,
}

impl RequestSeed<'_> {
    fn fail<E: de::Error>(&self, e: WriteError) -> E {
        let message = e.to_string();
        *self.failed.borrow_mut() = Some(e);
        E::custom(message)
    }
}

impl<'de> DeserializeSeed<'de> for &RequestSeed<'_> {
    type Value = Request;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Request, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &RequestSeed<'_> {
    type Value = Request;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object with one key")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Request, A::Error> {
        let Some(op) = map.next_key::<Cow<'de, str>>()? else {
            return Err(self.fail(bad(ONE_KEY.into())));
        };
        let request = if op == "write" {
            self.in_write.set(true);
            let batch = map.next_value_seed(json_body::BatchSeed(self.limits))?;
            self.in_write.set(false);
            Request::Write(batch)
        } else if op == "exec_many" {
            // Read where it stands too: its statements are most of it.
            self.in_write.set(true);
            let (session, statements) =
                map.next_value_seed(json_body::ExecManySeed(self.limits))?;
            self.in_write.set(false);
            Request::ExecMany {
                session,
                statements,
            }
        } else {
            let raw: &RawValue = map.next_value()?;
            operation(&op, raw.get().as_bytes(), self.limits).map_err(|e| self.fail(e))?
        };
        if map.next_key::<de::IgnoredAny>()?.is_some() {
            return Err(self.fail(bad(ONE_KEY.into())));
        }
        Ok(request)
    }
}

/// Decodes the body of one request named `op` (the value under the
/// request's one key; HTTP's session routes take it as their body).
///
/// # Errors
///
/// As [`request`].
pub fn operation(op: &str, raw: &[u8], limits: &Limits) -> Result<Request, WriteError> {
    let raw = std::str::from_utf8(raw).map_err(|_| bad("a request body is UTF-8 JSON".into()))?;
    // serde's message names the field and the place.
    let parse = |what: &str, e: serde_json::Error| bad(format!("malformed {what} request: {e}"));
    match op {
        "hello" => {
            #[derive(serde::Deserialize)]
            struct H {
                version: u32,
            }
            let h: H = serde_json::from_str(raw).map_err(|e| parse("hello", e))?;
            Ok(Request::Hello { version: h.version })
        }
        "write" => json_body::batch(raw.as_bytes(), limits).map(Request::Write),
        "status" => Ok(Request::Status),
        "begin" => {
            let b: crate::BeginRequest =
                serde_json::from_str(raw).map_err(|e| parse("begin", e))?;
            Ok(Request::Begin(b))
        }
        "exec" => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct E<'a> {
                session: u64,
                #[serde(borrow)]
                statement: &'a RawValue,
            }
            let e: E<'_> = serde_json::from_str(raw).map_err(|e| parse("exec", e))?;
            let statement = json_body::statement(e.statement.get().as_bytes(), limits)?;
            Ok(Request::Exec {
                session: e.session,
                statement,
            })
        }
        "exec_many" => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct E<'a> {
                session: u64,
                #[serde(borrow)]
                statements: &'a RawValue,
            }
            let e: E<'_> = serde_json::from_str(raw).map_err(|e| parse("exec_many", e))?;
            let statements = json_body::statements(e.statements.get().as_bytes(), limits)?;
            Ok(Request::ExecMany {
                session: e.session,
                statements,
            })
        }
        "commit" => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct C {
                session: u64,
                #[serde(default)]
                key: Option<String>,
                #[serde(default)]
                open_on_constraint: bool,
            }
            let c: C = serde_json::from_str(raw).map_err(|e| parse("commit", e))?;
            Ok(Request::Commit {
                session: c.session,
                key: c.key,
                open_on_constraint: c.open_on_constraint,
            })
        }
        "rollback" => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct R {
                session: u64,
            }
            let r: R = serde_json::from_str(raw).map_err(|e| parse("rollback", e))?;
            Ok(Request::Rollback { session: r.session })
        }
        "migrate" => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct M {
                migrations: Vec<crate::Migration>,
            }
            let m: M = serde_json::from_str(raw)
                .map_err(|e| bad(format!("malformed migrate request: {e}")))?;
            Ok(Request::Migrate(m.migrations))
        }
        "stop" => {
            #[derive(serde::Deserialize, Default)]
            #[serde(deny_unknown_fields)]
            struct S {
                #[serde(default)]
                hold: bool,
                #[serde(default)]
                grace_ms: Option<u64>,
            }
            let s: S = serde_json::from_str(raw).map_err(|e| parse("stop", e))?;
            Ok(Request::Stop(StopRequest {
                hold: s.hold,
                grace_ms: s.grace_ms,
            }))
        }
        other => Err(bad(format!(
            "unknown request {}: hello, write, status, stop, begin, exec, exec_many, commit, \
             rollback or migrate",
            json_body::quote(other)
        ))),
    }
}

/// What a JSON caller may ask for in its hello, beside the version:
/// `{"hello":{"version":3,"rows":"arrays"}}` has every answer give rows
/// as arrays in column order (names may repeat) instead of objects;
/// `"decltypes":true` adds to each statement's result its columns'
/// declared types (`"decltypes":["TIMESTAMP",null]`, for a driver's type
/// conversions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HelloOptions {
    /// Rows as arrays.
    pub rows_as_arrays: bool,
    /// Each result with its columns' declared types (`"decltypes"`).
    pub decltypes: bool,
}

/// The options of a JSON hello (defaults when it has none).
pub fn hello_options(body: &[u8]) -> HelloOptions {
    #[derive(serde::Deserialize)]
    struct H<'a> {
        #[serde(borrow, default)]
        rows: Option<&'a str>,
        #[serde(default)]
        decltypes: bool,
    }
    #[derive(serde::Deserialize)]
    struct Outer<'a> {
        #[serde(borrow)]
        hello: H<'a>,
    }
    match serde_json::from_slice::<Outer<'_>>(body) {
        Ok(o) => HelloOptions {
            rows_as_arrays: o.hello.rows == Some("arrays"),
            decltypes: o.hello.decltypes,
        },
        Err(_) => HelloOptions::default(),
    }
}

/// Encodes one answer.
pub fn reply(reply: &Reply) -> Json {
    reply_as(reply, HelloOptions::default())
}

/// Encodes one answer as the caller's hello asked.
pub fn reply_as(reply: &Reply, options: HelloOptions) -> Json {
    match reply {
        Ok(a) => json!({ "ok": answer_as(a, options) }),
        Err(e) => error_reply(e, crate::Undone::Call),
    }
}

/// Encodes an error answer to a call that undid `undone`.
pub fn error_reply(e: &WriteError, undone: crate::Undone) -> Json {
    json!({ "error": json::error_for(e, undone) })
}

/// What `{"ok": ..}` holds for `answer`, as the caller's hello asked.
pub fn answer_as(answer: &Answer, options: HelloOptions) -> Json {
    let arrays = options.rows_as_arrays;
    match answer {
        Answer::Hello(h) => json!({
            "protocol_version": h.protocol_version,
            "server_version": h.server_version,
            "pid": h.pid,
            "limits": serde_json::to_value(&h.limits).unwrap_or(Json::Null),
            "database": {
                "dev": h.database.dev,
                "ino": h.database.ino,
                "path": h.database.path,
            },
        }),
        Answer::Receipt(r) => json::receipt_as(r, arrays),
        Answer::Status(s) => json::status(s),
        Answer::Stopped(s) => json!({ "drained": s.drained, "pid": s.pid }),
        Answer::Began(b) => {
            serde_json::to_value(crate::json_answer::BeganJson(b)).unwrap_or(Json::Null)
        }
        Answer::Executed(r) => json::statement_result_as(r, arrays),
        Answer::RolledBack => json!({}),
        Answer::Migrated(m) => json!(m),
    }
}

#[cfg(test)]
#[path = "json_frame_tests.rs"]
mod tests;
