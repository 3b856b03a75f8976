//! Seeing an HTTP caller hang up while its request waits for an answer.
//!
//! hyper reads nothing more of a connection while a handler runs, and a
//! read could not tell a close from a half close anyway (`nc -N`, and socat
//! for its `-t` time: the caller shuts its side once its request is sent
//! and still reads the answer). A full close can be told: the kernel then
//! reports the socket hung up (`EPOLLHUP`, which needs both directions
//! shut), and a half close never sets it. A write session whose caller is
//! gone ends then, and a statement it runs stops, as on the RPC socket.

use std::os::fd::{AsFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::UnixStream;

use crate::peers::Spare;

/// A watch on one connection's socket, through a descriptor of its own
/// (drop it with the connection: it keeps the socket open), and that
/// descriptor's place among those connections may hold.
pub struct Hangup(Option<(AsyncFd<OwnedFd>, Spare)>);

impl Hangup {
    /// Watches `stream` with the descriptor `spare` leaves room for; a
    /// watch without one, or that cannot be set up, never fires (the
    /// connection's write sessions then end at their lease's end).
    pub fn watch(stream: &UnixStream, spare: Option<Spare>) -> Hangup {
        let Some(spare) = spare else {
            return Hangup(None);
        };
        let fd = stream.as_fd().try_clone_to_owned().ok();
        // Writable interest only: a half close (read side shut) wakes
        // nothing, a hang-up is always reported.
        Hangup(
            fd.and_then(|fd| {
                // SAFETY: the descriptor is the `OwnedFd` the `AsyncFd` owns:
                // it stays open, and names the same socket, until it is dropped.
                unsafe { AsyncFd::register_with_interest(fd, Interest::WRITABLE) }.ok()
            })
            .map(|fd| (fd, spare)),
        )
    }

    /// Resolves once the caller has closed its end of the connection.
    pub async fn wait(&self) {
        let Some((fd, _)) = &self.0 else {
            return std::future::pending().await;
        };
        loop {
            let Ok(mut ready) = fd.ready(Interest::WRITABLE).await else {
                return std::future::pending().await;
            };
            if ready.ready().is_write_closed() {
                return;
            }
            // Room to write (an answer was read): not what is watched.
            ready.clear_ready();
        }
    }
}
