//! A Unix socket for frames, with as few system calls and wake-ups as the
//! exchange allows.
//!
//! - **Read interest only.** A socket registered for writability is
//!   woken every time its peer reads (the kernel announces the freed
//!   room), which on a request/answer exchange means one useless wake-up
//!   of the waiting side per message. [`Socket`] registers for reading
//!   only; a write that finds the socket full (rare: frames are small)
//!   registers for writing just until there is room.
//! - **No extra read.** A read that fills less than the room it was given
//!   has taken everything the socket held, so its readiness is cleared
//!   there and then, instead of by one more read that would only answer
//!   "would block". (tokio clears readiness only for the event seen when
//!   the read began, so data arriving meanwhile still wakes the task.)

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::framebuf::FrameBuf;

/// A connected Unix socket carrying frames.
#[derive(Debug)]
pub struct Socket {
    fd: AsyncFd<UnixStream>,
}

impl Socket {
    /// Wraps a connected stream (made non-blocking). Needs a tokio runtime.
    ///
    /// # Errors
    ///
    /// When it cannot be made non-blocking or registered.
    pub fn new(stream: UnixStream) -> io::Result<Socket> {
        stream.set_nonblocking(true)?;
        // SAFETY: the stream owns its descriptor and the AsyncFd owns the
        // stream, so the descriptor stays open while it is registered.
        let fd = unsafe { AsyncFd::register_with_interest(stream, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Socket { fd })
    }

    /// From a tokio stream (as accepted or connected).
    ///
    /// # Errors
    ///
    /// As [`Socket::new`].
    pub fn from_tokio(stream: tokio::net::UnixStream) -> io::Result<Socket> {
        Socket::new(stream.into_std()?)
    }

    /// The stream, for what does not read or write (credentials,
    /// shutdown).
    pub fn get_ref(&self) -> &UnixStream {
        self.fd.get_ref()
    }

    /// Reads what the socket holds now into `input`, without waiting:
    /// `Ok(n)` bytes (0 at the end of the stream), or `WouldBlock` when it
    /// holds nothing (wait with [`Socket::readable`]).
    ///
    /// # Errors
    ///
    /// The read's error.
    pub fn read_now(&self, input: &mut FrameBuf) -> io::Result<usize> {
        let spare = input.spare();
        let len = spare.len();
        let mut got = 0usize;
        let r = self.fd.try_io(Interest::READABLE, |s| {
            let n = (&*s).read(spare)?;
            got = n;
            if n > 0 && n < len {
                // Everything it held: clear the readiness now.
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        input.filled(got, len);
        match r {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
            Err(e) => Err(e),
        }
    }

    /// Waits until there is something to read (or the end of the stream).
    ///
    /// # Errors
    ///
    /// When the registration fails.
    pub async fn readable(&self) -> io::Result<()> {
        self.fd.readable().await.map(|mut g| g.retain_ready())
    }

    /// Reads (waiting for the socket) until at least one byte or the end
    /// of the stream; returns the bytes read (0 at the end).
    ///
    /// # Errors
    ///
    /// The read's error.
    pub async fn read_some(&self, input: &mut FrameBuf) -> io::Result<usize> {
        loop {
            match self.read_now(input) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable().await?,
                other => return other,
            }
        }
    }

    /// Writes what it can of `bytes` without waiting.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when the socket is full; the write's error.
    pub fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        self.fd.get_ref().write(bytes)
    }

    /// Waits until the socket has room to write.
    ///
    /// # Errors
    ///
    /// When the socket cannot be registered for writing.
    pub async fn writable(&self) -> io::Result<()> {
        // Registered for writing only while waiting (see the module doc).
        let dup = self.fd.get_ref().try_clone()?;
        // SAFETY: as in `new`: the clone owns its own descriptor.
        let w = unsafe { AsyncFd::register_with_interest(dup, Interest::WRITABLE) }
            .map_err(|e| e.into_parts().1)?;
        w.writable().await.map(|mut g| g.retain_ready())
    }

    /// Writes all of `bytes`, waiting for room when the socket is full.
    ///
    /// # Errors
    ///
    /// The write's error.
    pub async fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        self.write_all_counted(bytes).await.map_err(|(_, e)| e)
    }

    /// As [`Socket::write_all`]; a failure says how many bytes had gone
    /// out before it (a caller may need to know whether anything left).
    ///
    /// # Errors
    ///
    /// The bytes written, and the socket's error.
    pub async fn write_all_counted(&self, mut bytes: &[u8]) -> Result<(), (usize, io::Error)> {
        let mut sent = 0;
        while !bytes.is_empty() {
            match self.try_write(bytes) {
                Ok(n) => {
                    bytes = &bytes[n..];
                    sent += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable().await.map_err(|e| (sent, e))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err((sent, e)),
            }
        }
        Ok(())
    }

    /// Shuts both directions down (the peer sees the end of the stream).
    pub fn shutdown(&self) {
        let _ = self.fd.get_ref().shutdown(std::net::Shutdown::Both);
    }
}
