//! Binds a socket so that it appears only when ready and never with a
//! wider mode than intended, and keeps it in place.
//!
//! The listener is bound under a temporary name, given its mode, then
//! renamed over the final path; the rename also replaces a stale socket
//! left by a killed arbiter (only the lock holder ever gets here). A
//! socket some process still accepts on is never replaced: one `--socket`
//! given to the arbiters of two databases made the second take the
//! first's name, and the two took it back from each other every second.
//! If the socket file disappears while the arbiter runs (a temp cleaner,
//! a careless `rm`), [`Listener::accept`] notices within [`CHECK_EVERY`]
//! and binds it again: an arbiter is never left running unreachable.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tracing::warn;

use crate::error::Error;
use crate::fileid::FileId;
use scribe_protocol::limits::MAX_SOCKET_PATH;

/// Mode of the socket file: owner only.
pub const SOCKET_MODE: u32 = 0o600;
/// Mode of the socket file with `--socket-group`: owner and group.
pub const GROUP_SOCKET_MODE: u32 = 0o660;
/// How often a listener checks that its socket file is still in place:
/// a removed socket is rare and clients retry their connect for longer,
/// while an idle arbiter should not wake often (each check is a wakeup).
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A bound socket that puts itself back when its file is removed.
pub struct Listener {
    inner: UnixListener,
    id: FileId,
    path: PathBuf,
    group: Option<String>,
    check: tokio::time::Interval,
    /// Accepts that failed since the last one logged, and when that was.
    failed: (u64, Option<std::time::Instant>),
    /// Another process listens on the path now (said once).
    displaced: bool,
    /// Told once when another process has taken the name (the arbiter
    /// stops: nobody could reach it, and it would hold the database).
    on_displaced: Option<DisplacedHook>,
}

/// What a listener tells once its socket is taken (see
/// [`Listener::on_displaced`]).
type DisplacedHook = Box<dyn Fn(&str) + Send>;

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("path", &self.path)
            .field("displaced", &self.displaced)
            .finish_non_exhaustive()
    }
}

/// The pause after an accept that failed (out of descriptors): the
/// connections that hold them must end first.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);
/// At most one log line about failing accepts this often (out of
/// descriptors, it wrote 200 lines a second).
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

impl Listener {
    /// Binds `path` with [`SOCKET_MODE`], or [`GROUP_SOCKET_MODE`] and
    /// owned by `group` when one is given. Needs a running tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] when the socket cannot be created or moved into
    /// place, or the group does not exist.
    pub fn bind(path: &Path, group: Option<&str>) -> Result<Listener, Error> {
        let (inner, id) = bind(path, group)?;
        let mut check = tokio::time::interval(CHECK_EVERY);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(Listener {
            inner,
            id,
            path: path.to_path_buf(),
            group: group.map(str::to_owned),
            check,
            failed: (0, None),
            displaced: false,
            on_displaced: None,
        })
    }

    /// Binds `path`, or, when `aside` allows and `path` cannot be taken (a
    /// file of another user's that a sticky `/tmp` keeps, or one that is
    /// not a socket), a name of its own beside it: `scribe-<hash>-<rand>`.
    /// The caller records the name it got (see `scribe_protocol::reach`).
    ///
    /// # Errors
    ///
    /// As [`Listener::bind`], for `path`, when no name aside fits either.
    pub fn bind_or_aside(path: &Path, group: Option<&str>, aside: bool) -> Result<Listener, Error> {
        let first = match Listener::bind(path, group) {
            Ok(l) => return Ok(l),
            Err(e) => e,
        };
        let Some(other) = aside.then(|| name_aside(path)).flatten() else {
            return Err(first);
        };
        let l = Listener::bind(&other, group).map_err(|_| first)?;
        warn!(
            path = %path.display(),
            aside = %other.display(),
            "the socket's name is taken by a file this arbiter cannot replace; bound a name \
             of its own beside it (clients find it in the lock record)"
        );
        Ok(l)
    }

    /// Calls `f` (with why, for people) once another process has taken
    /// this socket's name.
    pub fn on_displaced(&mut self, f: impl Fn(&str) + Send + 'static) {
        self.on_displaced = Some(Box::new(f));
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next connection; meanwhile, puts the socket back if its file
    /// was removed or replaced. An accept that fails (out of descriptors
    /// and the like) is logged, at most every [`ACCEPT_LOG_EVERY`], and
    /// tried again after a pause: the arbiter keeps serving.
    pub async fn accept(&mut self) -> UnixStream {
        loop {
            tokio::select! {
                r = self.inner.accept() => match r {
                    Ok((s, _)) => return s,
                    Err(e) => {
                        self.accept_failed(&e);
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                _ = self.check.tick() => self.keep_in_place(),
            }
        }
    }

    fn accept_failed(&mut self, e: &std::io::Error) {
        let (count, logged) = &mut self.failed;
        *count += 1;
        if logged.is_none_or(|at| at.elapsed() >= ACCEPT_LOG_EVERY) {
            warn!(
                error = %e,
                failed = *count,
                path = %self.path.display(),
                "accept failed (callers wait until connections end; see --max-connections)"
            );
            *count = 0;
            *logged = Some(std::time::Instant::now());
        }
    }

    fn keep_in_place(&mut self) {
        if self.id.is_at(&self.path) {
            return;
        }
        // A directory this user may no longer search (chmod) hides the
        // socket without removing it: nothing to put back.
        if std::fs::symlink_metadata(&self.path)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
        {
            return;
        }
        // Another process took the name over (one that does not check, or
        // that bound it at the same moment): taking it back would only
        // start a tug of war, and an arbiter nobody can reach would hold
        // its database for nothing. It stops (once told).
        if let Some(who) = listening_at(&self.path) {
            if !self.displaced {
                let why = format!(
                    "another process ({who}) took this arbiter's socket {}; nobody could reach \
                     it, so it stopped",
                    self.path.display()
                );
                tracing::error!(path = %self.path.display(), listener = %who, "{why}");
                if let Some(f) = &self.on_displaced {
                    f(&why);
                }
                self.displaced = true;
            }
            return;
        }
        match bind(&self.path, self.group.as_deref()) {
            Ok((inner, id)) => {
                warn!(path = %self.path.display(), "the socket file was removed; bound it again");
                self.inner = inner;
                self.id = id;
                self.displaced = false;
            }
            Err(e) => warn!(error = %e, "the socket file was removed and cannot be bound again"),
        }
    }
}

impl Drop for Listener {
    /// Removes the socket file, if it is still this listener's (a newer
    /// arbiter's socket at the same path is left alone).
    fn drop(&mut self) {
        if self.id.is_at(&self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `scribe-<hash>-<rand>.sock` for `scribe-<hash>.sock`, `<db>.scribe-
/// <rand>.http.sock` for `<db>.scribe.http.sock`: a name nobody could
/// have taken in advance; `None` when it would be too long.
fn name_aside(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let kind = [".http.sock", ".sock"]
        .into_iter()
        .find(|k| name.ends_with(k) && name.len() > k.len())?;
    let stem = &name[..name.len() - kind.len()];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mark = u64::from(std::process::id()) << 32 | u64::from(nanos);
    #[allow(clippy::cast_possible_truncation)] // eight hex digits are enough
    let rand = scribe_protocol::paths::fnv1a(&mark.to_le_bytes()) as u32;
    let other = path.with_file_name(format!("{stem}-{rand:08x}{kind}"));
    (other.as_os_str().len() <= MAX_SOCKET_PATH).then_some(other)
}

/// The name `path` is first bound under, in its directory (a rename
/// does not cross file systems): `<path>.<pid>.tmp`, or, when that is
/// over the length a socket path may have although `path` is not (the
/// paths resolve to a socket beside the database up to that length),
/// `.s<pid>.tmp`, which is never longer than a socket beside a database
/// (its name is at least `x.scribe.sock`, 13 bytes; a pid has at most 7
/// digits). A `--socket` path with a shorter name fits or fails as given.
fn temporary_name(path: &Path) -> PathBuf {
    let pid = std::process::id();
    let mut long = path.as_os_str().to_owned();
    long.push(format!(".{pid}.tmp"));
    if long.len() <= MAX_SOCKET_PATH {
        return PathBuf::from(long);
    }
    path.with_file_name(format!(".s{pid}.tmp"))
}

/// Who accepts connections on the socket at `path`, if a process does
/// (`pid N`); `None` for no socket or a stale one. The connect does not
/// block: a backlog too full to take it means a live listener too.
fn listening_at(path: &Path) -> Option<String> {
    use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};
    use std::os::unix::fs::FileTypeExt;
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        return None;
    }
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ok()?;
    match socket::connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &UnixAddr::new(path).ok()?,
    ) {
        Ok(()) => Some(
            socket::getsockopt(&fd, sockopt::PeerCredentials)
                .map_or_else(|_| "a process".into(), |c| format!("pid {}", c.pid())),
        ),
        Err(nix::errno::Errno::EAGAIN) => Some("a process too busy to accept".into()),
        Err(_) => None,
    }
}

/// Binds `path` atomically (temporary name, mode, rename), unless a
/// process accepts on a socket there.
fn bind(path: &Path, group: Option<&str>) -> Result<(UnixListener, FileId), Error> {
    let bind_err = |source| Error::Bind {
        path: path.to_path_buf(),
        source,
    };
    if let Some(who) = listening_at(path) {
        return Err(bind_err(std::io::Error::other(format!(
            "{who} listens there (another database's arbiter given the same --socket?); \
             give each database its own socket"
        ))));
    }
    let tmp = temporary_name(path);
    let _ = std::fs::remove_file(&tmp);
    let gid = match group {
        None => None,
        Some(name) => Some(
            nix::unistd::Group::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| bind_err(std::io::Error::other(format!("no group named {name:?}"))))?
                .gid,
        ),
    };
    let listener = UnixListener::bind(&tmp).map_err(bind_err)?;
    let mode = if gid.is_some() {
        GROUP_SOCKET_MODE
    } else {
        SOCKET_MODE
    };
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .and_then(|()| nix::unistd::chown(&tmp, None, gid).map_err(std::io::Error::from))
        .and_then(|()| FileId::of(&tmp))
        .and_then(|id| std::fs::rename(&tmp, path).map(|()| id));
    match placed {
        Ok(id) => Ok((listener, id)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(bind_err(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::name_aside;
    use std::path::Path;

    #[test]
    fn a_name_aside_keeps_its_directory_and_kind() {
        let a = name_aside(Path::new("/tmp/scribe-0123456789abcdef.http.sock")).unwrap();
        let a = a.to_str().unwrap();
        assert!(a.starts_with("/tmp/scribe-0123456789abcdef-"), "{a}");
        assert!(
            a.ends_with(".http.sock")
                && a.len() == "/tmp/scribe-0123456789abcdef.http.sock".len() + 9,
            "{a}"
        );
        let b = name_aside(Path::new("/srv/app.db.scribe.sock")).unwrap();
        let b = b.to_str().unwrap();
        assert!(
            b.starts_with("/srv/app.db.scribe-") && b.ends_with(".sock"),
            "{b}"
        );
        assert!(name_aside(Path::new(&format!("/{}.sock", "x".repeat(100)))).is_none());
    }
}
