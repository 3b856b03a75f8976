//! The HTTP routes and the mapping of error categories to status codes.
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `POST /v1/write` | `{"statements":[{"sql":..,"params":[..] or {..},"expect_rows":N}],"key":"..","wait_ms":N,"foreign_keys":B}` | the receipt |
//! | `GET /v1/status` | | the status |
//! | `POST /v1/wait` | `{"seq":N,"timeout_ms":T}` | `{"seq":N}` once commit N is visible |
//! | `POST /v1/begin` | `{"idle_ms":..,"total_ms":..,"wait_ms":..,"foreign_keys":..}` (all optional) | `{"session":N,"idle_ms","total_ms"}` once the writer serves it |
//! | `POST /v1/exec` | `{"session":N,"statement":{"sql":..,"params":..}}` | `{"columns","rows","rows_affected","last_insert_rowid"}` |
//! | `POST /v1/commit` | `{"session":N,"key":".."}` (key optional) | the receipt |
//! | `POST /v1/rollback` | `{"session":N}` | `{}` |
//! | `POST /v1/migrate` | `{"migrations":[{"version","name","sql","foreign_keys_off"}]}` | `{"before","after","applied","newer","seq"}` |
//!
//! A session belongs to the keep-alive connection that began it.
//!
//! Errors: `{"category":..,"message":..,"statement":..,"sqlite_code":..}`
//! with 400 `protocol`, 403 `refused`, 409 `conflict`, 413 `refused` (a
//! size limit), 422 `sql`, 429 `overloaded` (with `Retry-After`), 503
//! `unavailable`/`shutting_down`, 504 `timeout`, 410 `expired` (a
//! session's lease ran out), 400 `protocol` for a session this connection
//! does not have, 405 `protocol` for another method.

use std::sync::Arc;
use std::time::Duration;

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use scribe_protocol::frame::Answer;
use scribe_protocol::{json, json_body, Undone, WriteError};
use serde::Deserialize;

use crate::inflight::Room;
use crate::state::{InFlight, Shared};

/// Longest a `POST /v1/wait` may wait.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// How long a `POST /v1/wait` without `timeout_ms` waits.
const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// The routes of one connection from `peer` (pid, uid): its write
/// sessions live as long as it does.
pub fn router(shared: Arc<Shared>, peer: (i32, u32), sessions: super::ops::Connection) -> Router {
    let stateless = Router::new()
        .route("/v1/write", post(write).fallback(use_post))
        .route("/v1/status", get(status).fallback(use_get))
        .route("/v1/wait", post(wait).fallback(use_post))
        .with_state(Caller {
            shared: shared.clone(),
            pid: peer.0,
        });
    let sessions = Router::new()
        .route(
            "/v1/{op}",
            post(super::ops::operation).fallback(super::ops::other_method),
        )
        .with_state(sessions);
    // How long a kept-alive connection may stay idle, said to the caller a
    // second short of the arbiter's own limit (the wait for the next
    // request's head, `--hello-timeout`): a client that reuses a
    // connection the arbiter is closing meets a reset, and a write sent
    // without a key then has an unknown outcome (helper 101: Node's agent
    // retires its sockets by this header, and without it one write in 40
    // sent at 10 s idle failed with EPIPE).
    let idle = shared
        .config
        .hello_timeout
        .as_secs()
        .saturating_sub(1)
        .max(1);
    let keep_alive = axum::http::HeaderValue::from_str(&format!("timeout={idle}"))
        .expect("a number is a header value");
    stateless
        .merge(sessions)
        .fallback(
            |method: axum::http::Method, uri: axum::http::Uri| async move {
                super::ops::not_found(&format!("{method} {}", uri.path()))
            },
        )
        .layer(axum::middleware::map_response(move |mut r: Response| {
            let value = keep_alive.clone();
            async move {
                r.headers_mut().insert("keep-alive", value);
                r
            }
        }))
}

/// Another method on a route served by POST: 405 with an error body, as
/// on the session routes (axum's own 405 had none).
async fn use_post(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    use_only(&method, &uri, "POST")
}

/// Another method on `/v1/status`.
async fn use_get(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    use_only(&method, &uri, "GET")
}

fn use_only(method: &axum::http::Method, uri: &axum::http::Uri, want: &str) -> Response {
    failure(
        &WriteError::Protocol {
            message: format!("{method} {}: use {want}", uri.path()),
        },
        Some(StatusCode::METHOD_NOT_ALLOWED),
    )
}

/// The state of the routes that need no session: the arbiter's, and the
/// calling process (whose share of the memory budget a body takes).
#[derive(Clone)]
pub(super) struct Caller {
    shared: Arc<Shared>,
    pid: i32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitBody {
    seq: u64,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// An error answer: the status of its category and its JSON body.
pub(super) fn failure(e: &WriteError, status: Option<StatusCode>) -> Response {
    answer_failure(e, status, Undone::Call)
}

/// [`failure`] of a call that undid `undone` (a session's statement).
pub(super) fn failure_for(e: &WriteError, undone: Undone) -> Response {
    answer_failure(e, None, undone)
}

fn answer_failure(e: &WriteError, status: Option<StatusCode>, undone: Undone) -> Response {
    let status = status.unwrap_or(match e {
        WriteError::Protocol { .. } => StatusCode::BAD_REQUEST,
        WriteError::Refused { .. } => StatusCode::FORBIDDEN,
        WriteError::Conflict { .. } => StatusCode::CONFLICT,
        WriteError::Sql { .. } | WriteError::RolledBack { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        WriteError::Overloaded { .. } | WriteError::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
        WriteError::Unavailable { .. } | WriteError::ShuttingDown => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        WriteError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        WriteError::Expired { .. } => StatusCode::GONE,
    });
    let mut response = (status, Json(json::error_for(e, undone))).into_response();
    if let WriteError::Overloaded { retry_after_ms, .. } = e {
        let secs = retry_after_ms.div_ceil(1000).max(1);
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    response
}

fn protocol(message: String) -> Response {
    failure(&WriteError::Protocol { message }, None)
}

/// A size limit: 413, whatever the category says.
pub(super) fn too_large(e: &WriteError) -> Response {
    match e {
        WriteError::Refused { .. } => failure(e, Some(StatusCode::PAYLOAD_TOO_LARGE)),
        other => failure(other, None),
    }
}

/// Reads a body of at most `limit` bytes, whole, within the request
/// timeout, holding room for it in the shared memory budget.
pub(super) async fn read_body(
    shared: &Shared,
    request: Request,
    limit: usize,
    pid: i32,
) -> Result<(axum::body::Bytes, Room), Response> {
    let timeout = shared.config.hello_timeout;
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(too_large(&WriteError::Refused {
            statement: None,
            reason: format!(
                "request body of {} bytes is over {limit}",
                announced.unwrap_or(0)
            ),
        }));
    }
    let mut room = shared
        .inflight
        .reserve(announced.unwrap_or(limit as u64), timeout, pid)
        .await
        .map_err(|e| failure(&e, None))?;
    let read = tokio::time::timeout(timeout, to_bytes(request.into_body(), limit)).await;
    match read {
        Ok(Ok(bytes)) => {
            // Its body is in: its process's share is free for the next.
            room.arrived();
            Ok((bytes, room))
        }
        Ok(Err(e)) if is_length_limit(&e) => Err(too_large(&WriteError::Refused {
            statement: None,
            reason: format!("request body over {limit} bytes"),
        })),
        Ok(Err(e)) => Err(protocol(format!("malformed request body: {e}"))),
        Err(_) => Err(failure(
            &WriteError::Refused {
                statement: None,
                reason: format!(
                    "the request body did not arrive whole within {} (scribed --hello-timeout)",
                    humantime::format_duration(timeout)
                ),
            },
            Some(StatusCode::REQUEST_TIMEOUT),
        )),
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The largest body a request carrying a batch may have: JSON costs more
/// bytes than the batch it carries (escapes, base64).
pub(super) fn body_limit(limits: &scribe_protocol::limits::Limits) -> usize {
    (limits.max_batch_bytes as usize)
        .saturating_mul(2)
        .saturating_add(64 * 1024)
}

async fn write(State(Caller { shared, pid }): State<Caller>, request: Request) -> Response {
    shared.touch();
    let _in_flight = InFlight::new(&shared);
    let limits = &shared.config.limits;
    let (bytes, room) = match read_body(&shared, request, body_limit(limits), pid).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let batch = match json_body::batch(&bytes, limits) {
        Ok(b) => b,
        Err(e) => return too_large(&e),
    };
    drop(bytes);
    if let Err(e) = batch.check_text() {
        return failure(&e, None);
    }
    if let Err(e) = batch.check_limits(limits) {
        return too_large(&e);
    }
    match shared.writer.submit(batch, Some(room)).await {
        Ok(receipt) => answer_json(&Answer::Receipt(receipt)),
        Err(e) => failure(&e, None),
    }
}

/// An answer's JSON as the body of a 200 (written as bytes, which unlike
/// a JSON tree keep an infinite real: see `json_answer`).
pub(super) fn answer_json(answer: &Answer) -> Response {
    let body = scribe_protocol::json_answer::answer_bytes(answer);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

async fn status(State(Caller { shared, .. }): State<Caller>) -> Response {
    shared.touch();
    Json(json::status(&shared.status())).into_response()
}

async fn wait(State(Caller { shared, pid }): State<Caller>, request: Request) -> Response {
    shared.touch();
    let _in_flight = InFlight::new(&shared);
    let parsed: WaitBody = match read_body(&shared, request, 4096, pid).await {
        Ok((bytes, _room)) => match serde_json::from_slice(&bytes) {
            Ok(b) => b,
            Err(e) => return protocol(format!("malformed JSON body: {e}")),
        },
        Err(r) => return r,
    };
    let timeout = parsed
        .timeout_ms
        .map_or(DEFAULT_WAIT, Duration::from_millis)
        .min(MAX_WAIT);
    let mut seq = shared.stats.subscribe_seq();
    let reached = tokio::select! {
        r = tokio::time::timeout(timeout, seq.wait_for(|s| *s >= parsed.seq)) => r,
        // A stop must not wait out a long wait.
        () = shared.shutdown.cancelled() => return failure(&WriteError::ShuttingDown, None),
    };
    match reached {
        Ok(Ok(s)) => Json(serde_json::json!({ "seq": *s })).into_response(),
        Ok(Err(_)) => failure(&WriteError::ShuttingDown, None),
        Err(_) => failure(
            &WriteError::Timeout {
                message: format!(
                    "commit {} not reached within {} ms (the latest is {})",
                    parsed.seq,
                    timeout.as_millis(),
                    shared.stats.seq()
                ),
            },
            None,
        ),
    }
}
