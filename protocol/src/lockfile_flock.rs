//! The single-instance lock off Linux: `flock` on the lock file, whose
//! record is written into the locked file itself (see `lockfile`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::{Flock, FlockArg};

use crate::paths::Paths;

/// What keeps the lock: the locked lock file.
pub type Held = Flock<File>;

/// The record goes into the locked file itself: renaming another file
/// over it would leave the lock on a file no path names, and the next
/// arbiter would lock the new one.
pub fn record_in_place(held: &Held, path: &std::path::Path, text: &str) -> std::io::Result<bool> {
    super::write_in_place(held, path, text)
}

/// Opens (creating) the lock file and takes `flock` on it.
pub fn acquire(paths: &Paths) -> std::io::Result<Option<Held>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&paths.lock)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => Ok(Some(locked)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, errno)) => Err(errno.into()),
    }
}

/// Whether some process holds the lock file.
pub fn held(paths: &Paths) -> std::io::Result<bool> {
    let file = match File::open(&paths.lock) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_released_on_drop) => Ok(false),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(true),
        Err((_, errno)) => Err(errno.into()),
    }
}
