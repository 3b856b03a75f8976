//! Serving: the two adapters (RPC and HTTP) over the shared state, with
//! the watchers beside them, until the shutdown future resolves or a stop
//! is asked for; then the drain, in order.
//!
//! `run(listeners, shared, shutdown)`: the daemon passes SIGINT|SIGTERM as
//! `shutdown`; tests pass their own future.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::{DRAIN_BOUND, SHUTDOWN_TIMEOUT};
use crate::socket::Listener;
use crate::state::{Shared, StopReason};
use crate::{http, rpc, watch};

/// The two bound sockets.
#[derive(Debug)]
pub struct Listeners {
    /// The RPC socket (its accepting means "ready").
    pub rpc: Listener,
    /// The HTTP socket.
    pub http: Listener,
}

/// Serves until `shutdown` resolves (with why) or a stop begins another
/// way (`stop`, idle, a failure), then drains: new writes get
/// `ShuttingDown`, the queue is committed, the sockets are removed, and
/// every connection answers what it has in flight. Returns how many
/// queued writes were drained.
pub async fn run(
    listeners: Listeners,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = StopReason>,
) -> u64 {
    tokio::spawn(watch::writer(shared.clone()));
    tokio::spawn(watch::tick(shared.clone()));
    tokio::spawn(watch::trim());
    tokio::spawn(shared.spin.clone().run());
    if let Some(idle) = shared.config.idle_exit {
        tokio::spawn(watch::idle(shared.clone(), idle));
    }
    let connections = TaskTracker::new();
    let closing = CancellationToken::new();
    let accepting_http = tokio::spawn(http::run(
        listeners.http,
        shared.clone(),
        connections.clone(),
        closing.clone(),
    ));
    let accepting = tokio::spawn(rpc::run(
        listeners.rpc,
        shared.clone(),
        connections.clone(),
        closing.clone(),
    ));
    tokio::select! {
        reason = shutdown => shared.begin_shutdown(reason),
        () = shared.shutdown.cancelled() => {}
    }
    shared.mark_stopping(DRAIN_BOUND);
    shared.stop_checkpointer();
    info!(
        queued = shared.writer.depth(),
        "stopping: draining the queue"
    );
    // New writes get ShuttingDown from here on; the queue drains.
    let drained = shared.writer.stop().await;
    shared.writer.closed().await;
    shared.drained.send_replace(Some(drained));
    // Stop accepting (dropping a listener removes its socket file), then
    // end every connection's read side: each answers what it has in
    // flight, flushes, and closes.
    accepting.abort();
    accepting_http.abort();
    let _ = accepting.await;
    let _ = accepting_http.await;
    closing.cancel();
    connections.close();
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, connections.wait())
        .await
        .is_err()
    {
        warn!(
            in_flight = shared.in_flight.load(Ordering::Acquire),
            "connections still open after the shutdown timeout"
        );
    }
    drained
}
