//! HTTP/1.1 with JSON bodies on a second Unix socket, for callers in any
//! language (the Docker-engine convention). A thin adapter onto the same
//! shared state and write queue as the RPC service: there is no second
//! write path.
//!
//! The socket has the RPC socket's mode, peer check and connection caps.
//! A request must arrive whole in bounded time: its head within
//! `--hello-timeout`, and then its body within as long again; a
//! connection over a cap is answered `429` naming the cap, then closed.

mod hangup;
mod ops;
mod routes;

use std::sync::Arc;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::state::Shared;

/// Largest request head (request line and headers).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves HTTP on `listener` for as long as it is polled. Connections are
/// tasks of `connections`; cancelling `closing` shuts them down gracefully
/// (requests in flight are answered).
pub async fn run(
    listener: crate::socket::Listener,
    shared: Arc<Shared>,
    connections: TaskTracker,
    closing: CancellationToken,
) {
    let mut listener = listener;
    crate::state::stop_when_displaced(&mut listener, &shared);
    loop {
        let stream = listener.accept().await;
        // As on the RPC socket.
        if !shared.shutdown.is_cancelled() {
            crate::watch::db_in_place(&shared);
        }
        let place = match shared.peers.admit(&stream) {
            Ok(place) => place,
            Err(refusal) => {
                if let Some((place, e)) = shared.peers.refusing(refusal, 1000) {
                    connections.spawn(async move {
                        let _place = place;
                        refuse(stream, &e).await;
                    });
                }
                continue;
            }
        };
        let peer = stream
            .peer_cred()
            .map_or((0, 0), |c| (c.pid().unwrap_or(0), c.uid()));
        let caller = ops::Connection::new(shared.clone(), peer);
        let sessions = caller.sessions();
        let hangup = hangup::Hangup::watch(&stream, shared.peers.spare_descriptor());
        let service = TowerToHyperService::new(routes::router(shared.clone(), peer, caller));
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(shared.config.hello_timeout)
            .max_buf_size(MAX_HEAD_BYTES)
            // A client may shut its side down once its request is sent
            // (`nc -N`, socat): it is still answered. Without this, the
            // write ran and the connection closed with no answer.
            .half_close(true)
            .serve_connection(
                TokioIo::new(crate::stall::StallGuard::new(
                    stream,
                    shared.config.send_timeout,
                )),
                service,
            );
        let closing = closing.clone();
        let limit = shared.config.send_timeout;
        connections.spawn(async move {
            let _place = place;
            tokio::pin!(conn);
            let (mut stopping, mut gone) = (false, false);
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if r.as_ref().is_err_and(|e| crate::stall::is_stall(e)) {
                            tracing::warn!(
                                pid = peer.0,
                                waited = ?limit,
                                "closed an HTTP connection whose caller read none of its answers"
                            );
                        }
                        break;
                    }
                    () = closing.cancelled(), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    () = hangup.wait(), if !gone => {
                        // Its answer can no longer be read: its write
                        // sessions end now (a statement one runs stops),
                        // not when the answer is written, nor at their
                        // lease's end.
                        gone = true;
                        sessions.lock().unwrap_or_else(|p| p.into_inner()).close_all();
                    }
                }
            }
            // The watch's descriptor keeps the socket open: close it too.
            drop(hangup);
        });
    }
}

/// Answers a connection that is not admitted, without reading its
/// request: `429` over a cap, `403` for a uid that is not allowed, with
/// the error's JSON body; then closes it.
async fn refuse(mut stream: UnixStream, e: &scribe_protocol::WriteError) {
    let status = match e {
        scribe_protocol::WriteError::Overloaded { .. } => "429 Too Many Requests\r\nretry-after: 1",
        _ => "403 Forbidden",
    };
    let body = scribe_protocol::json::error(e).to_string();
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    crate::peers::say_and_hang_up(&mut stream, answer.as_bytes()).await;
}
