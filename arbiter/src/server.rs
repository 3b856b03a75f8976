//! The accept loop: `run(listener, shared)` serves until the task running
//! it is dropped. It keeps accepting while the arbiter drains, so callers
//! that arrive then get `ShuttingDown` (retryable), not a refused socket.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use scribe_protocol::{transport, Arbiter};
use tarpc::server::{BaseChannel, Channel};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::closing::Closing;
use crate::service::{Service, Shared};

/// Accepts connections for as long as it is polled. Each connection is a
/// task of `connections`; cancelling `closing` ends their read side.
pub async fn run(
    listener: UnixListener,
    shared: Arc<Shared>,
    connections: TaskTracker,
    closing: CancellationToken,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => accept(stream, &shared, &connections, &closing),
            Err(e) => {
                // Out of descriptors and the like: back off, keep serving.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

fn accept(
    stream: UnixStream,
    shared: &Arc<Shared>,
    connections: &TaskTracker,
    closing: &CancellationToken,
) {
    if !admit(&stream, shared, connections) {
        return;
    }
    let service = Service::new(shared.clone());
    let transport = Closing::new(
        transport::server(stream),
        closing.clone(),
        shared.config.hello_timeout,
        shared.config.idle_timeout,
    );
    connections.spawn(
        BaseChannel::with_defaults(transport)
            .execute(service.serve())
            // Calls run inside the connection's task (no task per call):
            // they mostly wait for the writer's answer.
            .for_each_concurrent(None, |call| call),
    );
}

/// Whether a new connection may be served: under the connection cap, and
/// from an allowed uid (checked with `SO_PEERCRED`). Refusals are logged
/// with the peer's uid and pid. Both listeners (RPC and HTTP) use it.
pub fn admit(stream: &UnixStream, shared: &Shared, connections: &TaskTracker) -> bool {
    if connections.len() >= shared.config.max_connections {
        warn!(
            max_connections = shared.config.max_connections,
            "refused a connection: too many open"
        );
        return false;
    }
    match stream.peer_cred() {
        Ok(cred) if shared.config.allowed_uids.contains(&cred.uid()) => {
            debug!(uid = cred.uid(), pid = ?cred.pid(), "connection");
            true
        }
        Ok(cred) => {
            warn!(uid = cred.uid(), pid = ?cred.pid(), "refused connection from a uid that is not allowed");
            false
        }
        Err(e) => {
            warn!(error = %e, "refused connection: no peer credentials");
            false
        }
    }
}
