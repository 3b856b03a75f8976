//! A transport whose read side ends on demand, or when the peer is silent.
//!
//! At shutdown the arbiter must answer every call it accepted, then close.
//! tarpc's channel does exactly that when its transport stops yielding
//! requests: it writes the responses still in flight, flushes, and ends.
//! [`Closing`] makes the read side end when a token is cancelled, when the
//! first request does not come within the hello timeout, or when no
//! request comes for the idle timeout — so a silent peer costs at most its
//! one connection, and only for a while.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::time::Duration;

use futures::{Sink, Stream};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Wraps a transport; its stream ends once `token` is cancelled or the
/// peer stays silent too long.
pub struct Closing<T> {
    inner: T,
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    silence: Pin<Box<Sleep>>,
    idle: Duration,
    done: bool,
}

impl<T> Closing<T> {
    /// Wraps `inner`: the first request must come within `hello`, each
    /// next one within `idle` of the previous.
    pub fn new(inner: T, token: CancellationToken, hello: Duration, idle: Duration) -> Self {
        Closing {
            inner,
            closed: Box::pin(token.cancelled_owned()),
            silence: Box::pin(tokio::time::sleep(hello)),
            idle,
            done: false,
        }
    }
}

impl<T: Stream + Unpin> Stream for Closing<T> {
    type Item = T::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.closed.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(item)) => {
                let next = Instant::now() + self.idle;
                self.silence.as_mut().reset(next);
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if self.silence.as_mut().poll(cx).is_ready() {
                    tracing::debug!("closing a silent connection");
                    self.done = true;
                    return Poll::Ready(None);
                }
                Poll::Pending
            }
        }
    }
}

impl<T: Sink<I> + Unpin, I> Sink<I> for Closing<T> {
    type Error = T::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: I) -> Result<(), T::Error> {
        Pin::new(&mut self.inner).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
