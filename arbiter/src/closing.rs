//! A transport whose read side ends on demand.
//!
//! At shutdown the arbiter must answer every call it accepted, then close.
//! tarpc's channel does exactly that when its transport stops yielding
//! requests: it writes the responses still in flight, flushes, and ends.
//! [`Closing`] makes the read side end when a token is cancelled.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Sink, Stream};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Wraps a transport; its stream ends once `token` is cancelled.
pub struct Closing<T> {
    inner: T,
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    done: bool,
}

impl<T> Closing<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, token: CancellationToken) -> Self {
        Closing {
            inner,
            closed: Box::pin(token.cancelled_owned()),
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
        Pin::new(&mut self.inner).poll_next(cx)
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
