//! The HTTP routes and the mapping of error categories to status codes.
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `POST /v1/write` | `{"statements":[{"sql":..,"params":[..] or {..},"expect_rows":N}],"key":".."}` | the receipt |
//! | `GET /v1/status` | | the status |
//! | `POST /v1/wait` | `{"seq":N,"timeout_ms":T}` | `{"seq":N}` once commit N is visible |
//!
//! Errors: `{"category":..,"message":..,"statement":..,"sqlite_code":..}`
//! with 400 `protocol`, 403 `refused`, 409 `conflict`, 413 `refused` (a
//! size limit), 422 `sql`, 429 `overloaded` (with `Retry-After`), 503
//! `unavailable`/`shutting_down`, 504 `timeout`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use scribe_protocol::{json, Batch, Statement, WriteError};
use serde::Deserialize;

use crate::service::{InFlight, Service, Shared};

/// Longest a `POST /v1/wait` may wait.
const MAX_WAIT: Duration = Duration::from_secs(60);

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/write", post(write))
        .route("/v1/status", get(status))
        .route("/v1/wait", post(wait))
        .with_state(shared)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteBody {
    statements: Vec<StatementBody>,
    #[serde(default)]
    key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementBody {
    sql: String,
    #[serde(default)]
    params: Option<serde_json::Value>,
    #[serde(default)]
    expect_rows: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitBody {
    seq: u64,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// An error answer: the status of its category and its JSON body.
fn failure(e: &WriteError, status: Option<StatusCode>) -> Response {
    let status = status.unwrap_or(match e {
        WriteError::Protocol { .. } => StatusCode::BAD_REQUEST,
        WriteError::Refused { .. } => StatusCode::FORBIDDEN,
        WriteError::Conflict { .. } => StatusCode::CONFLICT,
        WriteError::Sql { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        WriteError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
        WriteError::Unavailable { .. } | WriteError::ShuttingDown => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        WriteError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
    });
    let mut response = (status, Json(json::error(e))).into_response();
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

/// Reads a JSON body of at most `limit` bytes.
async fn body<T: serde::de::DeserializeOwned>(body: Body, limit: usize) -> Result<T, Response> {
    let bytes = to_bytes(body, limit).await.map_err(|_| {
        failure(
            &WriteError::Refused {
                reason: format!("request body over {limit} bytes"),
            },
            Some(StatusCode::PAYLOAD_TOO_LARGE),
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| protocol(format!("malformed JSON body: {e}")))
}

async fn write(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    shared.touch();
    let _in_flight = InFlight::new(&shared);
    let limits = &shared.config.limits;
    // JSON costs more bytes than the batch it carries (escapes, base64).
    let limit = (limits.max_batch_bytes as usize)
        .saturating_mul(2)
        .saturating_add(64 * 1024);
    let parsed: WriteBody = match body(request.into_body(), limit).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut statements = Vec::with_capacity(parsed.statements.len());
    for (i, st) in parsed.statements.into_iter().enumerate() {
        let params = match json::to_params(st.params.as_ref()) {
            Ok(p) => p,
            Err(e) => return protocol(format!("statement {i}: {e}")),
        };
        statements.push(Statement {
            sql: st.sql,
            params,
            expect_rows: st.expect_rows,
        });
    }
    let batch = Batch {
        statements,
        key: parsed.key,
    };
    if let Err(e) = batch.check(limits) {
        return failure(&e, Some(StatusCode::PAYLOAD_TOO_LARGE));
    }
    match shared.writer.submit(batch).await {
        Ok(receipt) => Json(json::receipt(&receipt)).into_response(),
        Err(e) => failure(&e, None),
    }
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    shared.touch();
    Json(json::status(&Service::status_now(&shared))).into_response()
}

async fn wait(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    shared.touch();
    let _in_flight = InFlight::new(&shared);
    let parsed: WaitBody = match body(request.into_body(), 4096).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let timeout = parsed
        .timeout_ms
        .map_or(MAX_WAIT, Duration::from_millis)
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
