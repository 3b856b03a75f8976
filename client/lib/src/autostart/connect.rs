//! Connecting to the arbiter's socket: who answers, and why a connect
//! failed, for people.

use std::os::unix::fs::MetadataExt;

use scribe_protocol::reach::{reach, Answerer, Peer, Which};
use scribe_protocol::{lockfile, Paths, WriteError};
use tokio::net::UnixStream;

/// Connects to the socket; `Ok(None)` when no arbiter listens there (no
/// socket file, or a stale one nobody accepts on, or another user's that
/// no arbiter holds any more: a new one replaces it).
///
/// # Errors
///
/// `Unavailable` for any other connect failure (e.g. permission denied
/// by a live arbiter's socket, saying what lets this user in).
pub async fn try_connect(paths: &Paths) -> Result<Option<UnixStream>, WriteError> {
    match connect(paths).await {
        Ok(s) => Ok(s),
        Err(e)
            if e.kind() == std::io::ErrorKind::PermissionDenied
                && !lockfile::is_held(paths).unwrap_or(true) =>
        {
            Ok(None)
        }
        Err(e) => Err(connect_failure(paths, &e)),
    }
}

/// One connect; `Ok(None)` when nobody answers yet. Only a process of a
/// user who may write the database may answer (see
/// `scribe_protocol::reach`): one listening while no arbiter holds the
/// database is as good as nobody (one is started, and binds a name of its
/// own if it must); another, while one does, is refused.
pub(super) async fn connect(paths: &Paths) -> std::io::Result<Option<UnixStream>> {
    connect_to(paths, reach(paths, Which::Rpc)).await
}

/// [`connect`] once the arbiter this caller started has exited, having
/// held the lock: a process that answers on its socket is heard as it
/// would have been while ours held it (one of a user who may write the
/// database: another database's arbiter given the same `--socket`, whose
/// hello then says whose it is).
pub(super) async fn connect_after_ours(paths: &Paths) -> std::io::Result<Option<UnixStream>> {
    let mut to = reach(paths, Which::Rpc);
    to.answerer = Answerer::Writer;
    connect_to(paths, to).await
}

async fn connect_to(
    paths: &Paths,
    to: scribe_protocol::reach::Reach,
) -> std::io::Result<Option<UnixStream>> {
    if let Err(why) = to.check_path(paths.socket_given()) {
        // No arbiter yet: one is started (and binds a name of its own).
        return match to.answerer {
            Answerer::Nobody => Ok(None),
            Answerer::Writer => Err(std::io::Error::other(Impostor(why))),
        };
    }
    match UnixStream::connect(&to.path).await {
        Ok(s) => {
            use std::os::fd::AsRawFd;
            let peer = s
                .peer_cred()
                .ok()
                .map(|c| Peer::of(s.as_raw_fd(), c.uid(), c.gid()));
            match to.check(peer.as_ref(), &paths.db) {
                Ok(()) => Ok(Some(s)),
                Err(_) if to.answerer == Answerer::Nobody => Ok(None),
                Err(why) => Err(std::io::Error::other(Impostor(why))),
            }
        }
        // No socket, a stale one, or a backlog so full that the arbiter
        // cannot take us now: all mean "nobody answers yet".
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::WouldBlock
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Another process than the database's arbiter answered on a socket
/// outside its directory (the reason, for people).
#[derive(Debug)]
struct Impostor(String);

impl std::fmt::Display for Impostor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Impostor {}

pub(super) fn is_impostor(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<Impostor>())
}

/// A connect that failed otherwise than "nobody answers yet".
pub(super) fn connect_failure(paths: &Paths, e: &std::io::Error) -> WriteError {
    let reason = if e.kind() == std::io::ErrorKind::PermissionDenied {
        denied(paths, e)
    } else if is_impostor(e) {
        e.to_string()
    } else {
        format!("cannot connect to {}: {e}", paths.socket.display())
    };
    WriteError::Unavailable { reason }
}

/// Why a live arbiter's socket refused us, and what lets us in.
fn denied(paths: &Paths, e: &std::io::Error) -> String {
    let me = nix::unistd::getuid().as_raw();
    if let Some(dir) = paths.socket.parent() {
        if nix::unistd::access(dir, nix::unistd::AccessFlags::X_OK).is_err() {
            return format!(
                "cannot connect to {}: {e}: uid {me} may not enter its directory {}",
                paths.socket.display(),
                dir.display()
            );
        }
    }
    let whose = std::fs::metadata(&paths.socket).map_or_else(
        |_| String::from("another user's"),
        |m| format!("uid {}'s (mode {:04o})", m.uid(), m.mode() & 0o777),
    );
    format!(
        "cannot connect to {}: {e}: the running arbiter's socket is {whose}, and uid {me} may \
         not use it; to share this database between users, put `socket-group = GROUP` (a \
         group both users are in) and `allow-group = GROUP` (or `allow-uid = {me}`) in {} and \
         restart the arbiter (a user just added to that group must log in again for it to \
         count)",
        paths.socket.display(),
        paths.config.display()
    )
}
