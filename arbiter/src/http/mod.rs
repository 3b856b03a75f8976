//! HTTP/1.1 with JSON bodies on a second Unix socket, for callers in any
//! language (the Docker-engine convention). A thin adapter onto the same
//! write queue: there is no second write path.
//!
//! The socket has the RPC socket's mode and peer check, connection cap,
//! and a header-read timeout; bodies are limited to what a batch may be.

mod routes;

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use crate::server::admit;
use crate::service::Shared;

/// Largest request head (request line and headers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves HTTP on `listener` for as long as it is polled. Connections are
/// tasks of `connections`; cancelling `closing` shuts them down gracefully
/// (requests in flight are answered).
pub async fn run(
    listener: UnixListener,
    shared: Arc<Shared>,
    connections: TaskTracker,
    closing: CancellationToken,
) {
    let app = routes::router(shared.clone());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                warn!(error = %e, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if !admit(&stream, &shared, &connections) {
            continue;
        }
        let service = TowerToHyperService::new(app.clone());
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(shared.config.hello_timeout)
            .max_buf_size(MAX_HEAD_BYTES)
            .serve_connection(TokioIo::new(stream), service);
        let closing = closing.clone();
        connections.spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = closing.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}
