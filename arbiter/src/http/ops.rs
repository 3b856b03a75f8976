//! The socket protocol's operations over HTTP, with the bodies of its JSON
//! codec: the write sessions (`POST /v1/begin`, `/v1/exec`,
//! `/v1/exec_many`, `/v1/commit`, `/v1/rollback`) and `POST /v1/migrate`. A session belongs to the HTTP
//! connection (keep-alive) that began it, as on the socket: when that
//! connection closes, its session is rolled back at once rather than when
//! its lease runs out.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, Request, State};
use axum::response::Response;
use scribe_protocol::frame::{Answer, Request as Op};
use scribe_protocol::{json_frame, Undone, WriteError};
use tokio::sync::oneshot;

use super::routes::{answer_json, failure, failure_for, read_body, too_large};
use crate::sessions::Sessions;
use crate::state::{InFlight, Shared};
use crate::writer::ReplyTo;

/// One HTTP connection's state: the shared state and its sessions.
#[derive(Clone)]
pub struct Connection {
    pub shared: Arc<Shared>,
    sessions: Arc<Mutex<Sessions>>,
    /// The calling process (whose share of the memory budget a body takes).
    pid: i32,
}

impl Connection {
    /// A connection from `peer` (pid, uid), with no session yet.
    pub fn new(shared: Arc<Shared>, peer: (i32, u32)) -> Connection {
        Connection {
            sessions: Arc::new(Mutex::new(Sessions::serial(shared.clone(), peer))),
            shared,
            pid: peer.0,
        }
    }

    /// Its write sessions, for whoever sees the caller hang up.
    pub fn sessions(&self) -> Arc<Mutex<Sessions>> {
        self.sessions.clone()
    }
}

/// What `POST /v1/{op}` serves.
const OPS: [&str; 6] = [
    "begin",
    "exec",
    "exec_many",
    "commit",
    "rollback",
    "migrate",
];

/// A path this socket does not serve: 404, with the paths it does.
pub(super) fn not_found(what: &str) -> Response {
    super::routes::failure(
        &WriteError::Protocol {
            message: format!(
                "{what} is not served here: POST /v1/write, /v1/wait, /v1/begin, /v1/exec, \
                 /v1/exec_many, /v1/commit, /v1/rollback or /v1/migrate; GET /v1/status"
            ),
        },
        Some(axum::http::StatusCode::NOT_FOUND),
    )
}

/// Any other method on `/v1/{op}`: 405 for a path served by POST, 404
/// for one not served at all.
pub async fn other_method(method: axum::http::Method, Path(op): Path<String>) -> Response {
    if OPS.contains(&op.as_str()) {
        return super::routes::failure(
            &WriteError::Protocol {
                message: format!("{method} /v1/{op}: use POST"),
            },
            Some(axum::http::StatusCode::METHOD_NOT_ALLOWED),
        );
    }
    not_found(&format!("{method} /v1/{op}"))
}

/// `POST /v1/{op}` for the session operations and `migrate`.
pub async fn operation(
    State(conn): State<Connection>,
    Path(op): Path<String>,
    request: Request,
) -> Response {
    let shared = &conn.shared;
    shared.touch();
    if !OPS.contains(&op.as_str()) {
        return not_found(&format!("POST /v1/{op}"));
    }
    let _in_flight = InFlight::new(shared);
    let limits = &shared.config.limits;
    let limit = super::routes::body_limit(limits);
    let (bytes, _room) = match read_body(shared, request, limit, conn.pid).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    let decoded = match json_frame::operation(&op, body, limits) {
        Ok(d) => d,
        Err(e) => return too_large(&e),
    };
    let (tx, rx) = oneshot::channel();
    let to = ReplyTo::Oneshot(tx);
    // A session statement's error undoes only itself, and says so.
    let undone = match decoded {
        Op::Exec { .. } | Op::ExecMany { .. } => Undone::Statement,
        _ => Undone::Call,
    };
    let queued = {
        let mut sessions = conn.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match decoded {
            Op::Begin(b) => sessions.begin(b, to),
            Op::Exec { session, statement } => sessions.exec(session, statement, to),
            Op::ExecMany {
                session,
                statements,
            } => sessions.exec_many(session, statements, to),
            Op::Commit {
                session,
                key,
                open_on_constraint,
            } => sessions.commit(session, key, open_on_constraint, to),
            Op::Rollback { session } => sessions.rollback(session, to),
            Op::Migrate(list) => shared.writer.migrate(list, to),
            _ => Err(WriteError::Protocol {
                message: format!("POST /v1/{op} is not an operation of this socket"),
            }),
        }
    };
    if let Err(e) = queued {
        return failure_for(&e, undone);
    }
    match rx.await {
        Ok(Ok(answer)) => answered(answer),
        Ok(Err(e)) => failure_for(&e, undone),
        Err(_) => failure(
            &WriteError::Timeout {
                message: "the writer stopped before answering; a commit may or may not have \
                          happened (ask again with its idempotency key)"
                    .into(),
            },
            None,
        ),
    }
}

fn answered(answer: Answer) -> Response {
    answer_json(&answer)
}
