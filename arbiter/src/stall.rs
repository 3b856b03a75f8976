//! A caller that stops reading its answers is closed once its answers
//! have waited `--send-timeout` (60 s) without the caller taking any of
//! them, on either socket. Before, such a connection stayed for ever: a few processes
//! that sent requests and never read the answers held every connection
//! the arbiter had, and every other caller was told `Overloaded` for as
//! long as they liked (helper 87). The caller has its part to do in
//! bounded time, as it has to send a request whole. What it took is asked
//! of the socket, which shows it a buffer chunk (about 36 KB) at a time:
//! a reader slower than one chunk per `--send-timeout` passes for one
//! that stopped (helper 91: with 10 s, readers below 3.5 KB/s were cut).

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Why a stalled connection ended (told apart from other timeouts).
#[derive(Debug)]
struct Stalled(Duration);

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the caller read none of its answers for {:?}", self.0)
    }
}

impl std::error::Error for Stalled {}

/// The error a stalled connection ends with.
pub fn stalled(limit: Duration) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, Stalled(limit))
}

/// Bytes written to the socket `fd` that its peer has not read yet
/// (`SIOCOUTQ`); `None` where it cannot be asked. The kernel says a
/// socket is writable again only once about half its buffer has drained:
/// a caller reading slowly but steadily drains it for seconds with no
/// write of ours going out, and must not pass for one reading nothing
/// (helper 90: one reading 10 KB/s of a 400 KB answer was cut).
pub fn unread(fd: RawFd) -> Option<u64> {
    let mut n: nix::libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int through the pointer given.
    let rc = unsafe { nix::libc::ioctl(fd, nix::libc::TIOCOUTQ, &mut n) };
    (rc == 0).then(|| u64::try_from(n).unwrap_or(0))
}

/// Whether the peer of `fd` took some of what was unread `before` (the
/// count is kept in `before` for the next look).
pub fn peer_read(fd: RawFd, before: &mut Option<u64>) -> bool {
    let now = unread(fd);
    let took = matches!((*before, now), (Some(b), Some(n)) if n < b);
    *before = now;
    took
}

/// Whether `e` (or what caused it) is [`stalled`]'s error.
pub fn is_stall(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        let ours = c
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .is_some_and(|inner| inner.is::<Stalled>());
        if ours || c.is::<Stalled>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A stream whose writes fail with [`stalled`] once one has waited
/// `limit` for the peer to read, with nothing written meanwhile (HTTP:
/// hyper has no such limit of its own).
#[derive(Debug)]
pub struct StallGuard<S> {
    inner: S,
    limit: Duration,
    /// Running while a write waits; dropped when one makes progress.
    waiting: Option<Pin<Box<Sleep>>>,
    /// What the peer had not read when the wait began or was renewed.
    unread: Option<u64>,
}

impl<S: AsRawFd> StallGuard<S> {
    /// Guards `inner`'s writes.
    pub fn new(inner: S, limit: Duration) -> StallGuard<S> {
        StallGuard {
            inner,
            limit,
            waiting: None,
            unread: None,
        }
    }

    /// What a write that waits returns: still waiting, or the stall.
    fn wait<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        if self.waiting.is_none() {
            self.unread = unread(self.inner.as_raw_fd());
        }
        loop {
            let sleep = self
                .waiting
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
            match sleep.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                // Still reading, however slowly: wait on.
                Poll::Ready(()) if peer_read(self.inner.as_raw_fd(), &mut self.unread) => {
                    self.waiting = None;
                }
                Poll::Ready(()) => return Poll::Ready(Err(stalled(limit))),
            }
        }
    }

    fn progress<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.waiting = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.wait(cx),
        }
    }
}

impl<S: AsyncRead + AsRawFd + Unpin> AsyncRead for StallGuard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + AsRawFd + Unpin> AsyncWrite for StallGuard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
