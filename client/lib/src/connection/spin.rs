//! A caller alone on its connection polls for its answer for a moment
//! before it sleeps: a small write's answer comes sooner than a sleeping
//! thread wakes (the rule and its back-off: [`scribe_protocol::spin`]).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Waits for `answer`, polling first for up to `window`: each yield lets
/// the runtime read the socket without sleeping, and `sched_yield` lets a
/// runnable process on this CPU go first (when one does, the machine is
/// busy and the poll stops: a miss, for callers are many and polling
/// would take CPU from the arbiter). Returns the answer and whether it
/// came within an uncontended poll.
pub(super) async fn poll_then_wait<F: Future + Unpin>(
    mut answer: F,
    window: Duration,
) -> (F::Output, bool) {
    let start = Instant::now();
    loop {
        let polled = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut answer).poll(cx))).await;
        if let Poll::Ready(out) = polled {
            return (out, true);
        }
        if start.elapsed() >= window {
            return (answer.await, false);
        }
        tokio::task::yield_now().await;
        if scribe_protocol::spin::yield_cpu() {
            return (answer.await, false);
        }
    }
}
