//! The RPC adapter: scribe's own framing (`scribe_protocol::frame`) on
//! the RPC socket, over the shared state and the writer's queue.
//!
//! One task per connection reads every frame a read brings, hands writes
//! to the writer without waiting, and writes every answer that is ready
//! with one system call. It keeps accepting while the arbiter drains, so
//! callers that arrive then get `ShuttingDown` (retryable), not a refused
//! socket. A connection over a cap is answered `Overloaded`, naming the
//! cap, before it is closed.
//!
//! - `mod.rs`: the accept loop and the admission of each connection.
//! - `conn.rs`: one connection, from its preamble to its close.
//! - `handle.rs`: one request: hello, write, status, stop.

mod conn;
mod handle;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    crate::state::stop_when_displaced(&mut listener, &shared);
    loop {
        let stream = listener.accept().await;
        // Gone: the stop begins now, and this caller is told so (and
        // retries) like any that arrives during a drain.
        if !shared.shutdown.is_cancelled() {
            crate::watch::db_in_place(&shared);
        }
        match shared.peers.admit(&stream) {
            Ok(place) => {
                connections.spawn(conn::serve(stream, place, shared.clone(), closing.clone()));
            }
            Err(refusal) => {
                if let Some((place, e)) = shared.peers.refusing(refusal, 200) {
                    connections.spawn(async move {
                        let _place = place;
                        conn::refuse(stream, e).await;
                    });
                }
            }
        }
    }
}
