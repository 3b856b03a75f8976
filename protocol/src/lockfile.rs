//! Single instance by `flock` on `<db>.scribe.lock`.
//!
//! The kernel releases the lock when the holder dies, however it dies, so
//! there is no stale state to clean. The pid, start time and socket written
//! into the file are for humans and `status`; liveness is the lock alone.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};

use crate::error::Error;

/// Held for the arbiter's whole life; dropping it releases the lock.
#[derive(Debug)]
pub struct InstanceLock {
    file: Flock<File>,
    path: PathBuf,
}

/// What the lock file records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockInfo {
    /// The holder's pid, when it has written it.
    pub pid: Option<u32>,
    /// Unix seconds at start.
    pub started: Option<u64>,
    /// The socket it serves.
    pub socket: Option<PathBuf>,
}

impl InstanceLock {
    /// Takes the lock without waiting; `Ok(None)` when another process
    /// holds it.
    ///
    /// # Errors
    ///
    /// [`Error::Lock`] when the file cannot be opened or locked.
    pub fn try_acquire(path: &Path) -> Result<Option<InstanceLock>, Error> {
        let lock_err = |source| Error::Lock {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(lock_err)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(file) => Ok(Some(InstanceLock {
                file,
                path: path.to_path_buf(),
            })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(lock_err(errno.into())),
        }
    }

    /// Records who holds the lock.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be written.
    pub fn record(&mut self, socket: &Path) -> Result<(), Error> {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let text = format!(
            "pid={}\nstarted={started}\nsocket={}\n",
            std::process::id(),
            socket.display()
        );
        let f: &mut File = &mut self.file;
        f.set_len(0)
            .and_then(|()| f.rewind())
            .and_then(|()| f.write_all(text.as_bytes()))
            .map_err(|source| Error::Lock {
                path: self.path.clone(),
                source,
            })
    }
}

/// True when some process holds the lock (an arbiter is alive). Decided
/// by the lock alone, never by the pid written in the file.
///
/// # Errors
///
/// [`Error::Lock`] when the file exists but cannot be opened.
pub fn is_held(path: &Path) -> Result<bool, Error> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(Error::Lock {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_released_on_drop) => Ok(false),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(true),
        Err((_, errno)) => Err(Error::Lock {
            path: path.to_path_buf(),
            source: errno.into(),
        }),
    }
}

/// Reads what the lock file records (empty when absent or unreadable).
pub fn read_info(path: &Path) -> LockInfo {
    let mut text = String::new();
    if File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .is_err()
    {
        return LockInfo::default();
    }
    let mut info = LockInfo::default();
    for line in text.lines() {
        match line.split_once('=') {
            Some(("pid", v)) => info.pid = v.trim().parse().ok(),
            Some(("started", v)) => info.started = v.trim().parse().ok(),
            Some(("socket", v)) => info.socket = Some(PathBuf::from(v.trim())),
            _ => {}
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let mut first = InstanceLock::try_acquire(&path).unwrap().expect("free");
        first.record(Path::new("/s.sock")).unwrap();
        assert!(InstanceLock::try_acquire(&path).unwrap().is_none());
        assert!(is_held(&path).unwrap());
        let info = read_info(&path);
        assert_eq!(info.pid, Some(std::process::id()));
        assert_eq!(info.socket.as_deref(), Some(Path::new("/s.sock")));
        drop(first);
        assert!(!is_held(&path).unwrap());
        assert!(InstanceLock::try_acquire(&path).unwrap().is_some());
    }
}
