//! The RPC adapter's accept loop: serves until the task running it is
//! dropped. It keeps accepting while the arbiter drains, so callers that
//! arrive then get `ShuttingDown` (retryable), not a refused socket.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use scribe_protocol::{transport, Arbiter};
use tarpc::server::{BaseChannel, Channel};
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

use crate::closing::Closing;
use crate::peers::Admitted;
use crate::service::Service;
use crate::socket::Listener;
use crate::state::Shared;

/// Accepts connections for as long as it is polled. Each connection is a
/// task of `connections`; cancelling `closing` ends their read side.
pub async fn run(
    mut listener: Listener,
    shared: Arc<Shared>,
    connections: TaskTracker,
    closing: CancellationToken,
) {
    loop {
        match listener.accept().await {
            Ok(stream) => accept(stream, &shared, &connections, &closing),
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
    let Ok(place) = shared.peers.admit(&stream) else {
        return;
    };
    let service = Service::new(shared.clone());
    let transport = Closing::new(
        transport::server(stream),
        closing.clone(),
        shared.config.hello_timeout,
        shared.config.idle_timeout,
    );
    connections.spawn(serve(place, service, transport));
}

async fn serve(_place: Admitted, service: Service, transport: Closing<transport::ServerTransport>) {
    BaseChannel::with_defaults(transport)
        .execute(service.serve())
        // Calls run inside the connection's task (no task per call):
        // they mostly wait for the writer's answer.
        .for_each_concurrent(None, |call| call)
        .await;
}
