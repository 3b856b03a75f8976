//! One arbiter at a time uses the WAL at a database's path.
//!
//! The instance lock is on the database file, so a file renamed over the
//! database while its arbiter runs (a restore: `mv backup.db app.db`) has
//! a lock of its own, and an arbiter could start on it while the one
//! serving the file that was there still drained. Both then used the same
//! `-wal` and `-shm` paths: the new one committed into that WAL, and the
//! old one's last checkpoint copied the WAL into its own file and emptied
//! it, wiping writes the new one had acknowledged. So every arbiter also
//! holds an open-file-description lock on one byte of the WAL at its path
//! (SQLite never locks the WAL file itself: its locks are in `-shm`), and a
//! new one waits for the old one to let go before it opens the database.
//!
//! The old one may leave its WAL behind, its last checkpoint held back by
//! a reader's old snapshot: SQLite would replay it onto the file now at
//! the path, another database. So an arbiter whose database was replaced
//! takes its own WAL from the path as it stops (see
//! `writer::last_checkpoint`). Until then, and if it is killed first, the
//! WAL is at the path, where any connection to the new file reads it: the
//! README says how to restore safely. And an arbiter never starts on a
//! database that is missing while a WAL with frames lies at its path (it
//! was moved away: SQLite would replay that WAL onto a new empty file).

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::Error;

/// The byte locked: the instance lock's offset, past any data a WAL of
/// this size would hold (a lock may lie past the end of a file).
const WAL_LOCK_OFFSET: i64 = scribe_protocol::lockfile::LOCK_OFFSET;

/// How long a new arbiter waits for the one serving a replaced file to
/// let go of the WAL: its drain is bounded by the batch budget and the
/// stop's own limits, well within this.
pub const WAIT_FOR_PREVIOUS: Duration = Duration::from_secs(30);

/// The WAL's lock, held while this value lives (`None` inside: no WAL at
/// the path when it was taken).
#[derive(Debug)]
pub struct WalHold(#[allow(dead_code)] Option<File>);

/// Waits until no other process holds the lock of the WAL at `wal`;
/// true when it had to wait (`on_wait` runs once, when the wait begins).
///
/// # Errors
///
/// When another arbiter still holds it after `within`, or the WAL cannot
/// be opened to look.
pub fn wait_free(wal: &Path, within: Duration, mut on_wait: impl FnMut()) -> Result<bool, Error> {
    let deadline = Instant::now() + within;
    let mut said = false;
    loop {
        let Some(file) = open(wal)? else {
            return Ok(said);
        };
        if !imp::held_elsewhere(&file).map_err(|e| Error::io("looking at the WAL's lock", e))? {
            return Ok(said);
        }
        if !said {
            tracing::warn!(
                wal = %wal.display(),
                "the arbiter of the file that was at this path before it was moved or \
                 replaced still uses its WAL; waiting for it to stop"
            );
            said = true;
            on_wait();
        }
        // A stop signal ends the wait (the start then stops; see `early`).
        if crate::early::received().is_some() {
            return Ok(said);
        }
        if Instant::now() >= deadline {
            return Err(Error::io(
                "starting",
                std::io::Error::other(format!(
                    "the arbiter of the file that was at this database's path before it was \
                     moved or replaced still uses {} after {}; try again once it has stopped",
                    wal.display(),
                    humantime::format_duration(within)
                )),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Takes the lock of the WAL at `wal` (once the database is open, the
/// WAL is there).
///
/// # Errors
///
/// When the WAL cannot be opened, or another process holds its lock.
pub fn hold(wal: &Path) -> Result<WalHold, Error> {
    let Some(file) = open(wal)? else {
        return Ok(WalHold(None));
    };
    imp::lock(&file).map_err(|e| Error::io("locking the WAL", e))?;
    Ok(WalHold(Some(file)))
}

fn open(wal: &Path) -> Result<Option<File>, Error> {
    match std::fs::OpenOptions::new().read(true).write(true).open(wal) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("opening the WAL", e)),
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::fs::File;
    use std::os::fd::AsFd;

    use nix::fcntl::{fcntl, FcntlArg};
    use nix::libc;

    fn range(kind: libc::c_short) -> libc::flock {
        // SAFETY: flock is a plain C struct; all-zero is a valid value.
        let mut f: libc::flock = unsafe { std::mem::zeroed() };
        f.l_type = kind;
        f.l_whence = libc::SEEK_SET as libc::c_short;
        f.l_start = super::WAL_LOCK_OFFSET;
        f.l_len = 1;
        f
    }

    pub fn held_elsewhere(file: &File) -> std::io::Result<bool> {
        let mut probe = range(libc::F_WRLCK as _);
        fcntl(file.as_fd(), FcntlArg::F_OFD_GETLK(&mut probe))?;
        Ok(probe.l_type != libc::F_UNLCK as libc::c_short)
    }

    pub fn lock(file: &File) -> std::io::Result<()> {
        fcntl(
            file.as_fd(),
            FcntlArg::F_OFD_SETLK(&range(libc::F_WRLCK as _)),
        )?;
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    //! Without open-file-description locks, a lock here would be dropped
    //! whenever SQLite closes a descriptor of the WAL: not kept.
    use std::fs::File;

    #[allow(clippy::unnecessary_wraps)]
    pub fn held_elsewhere(_file: &File) -> std::io::Result<bool> {
        Ok(false)
    }

    #[allow(clippy::unnecessary_wraps)]
    pub fn lock(_file: &File) -> std::io::Result<()> {
        Ok(())
    }
}

/// Refuses a start where the database is missing but a WAL holding frames
/// lies at its path: the database was moved away (or deleted by hand
/// without it), and a new file made there would be read through it.
///
/// # Errors
///
/// That refusal, saying what to do.
pub fn refuse_orphan(paths: &scribe_protocol::Paths) -> Result<(), Error> {
    let wal = paths.wal();
    let orphan = || !paths.db.exists() && std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    if !orphan() {
        return Ok(());
    }
    // The arbiter of a database deleted or moved under it may hold that
    // WAL still: it removes a deleted one's as it stops, and a moved one
    // leaves its stopping marker (a new file must not be made there).
    if wait_free(&wal, WAIT_FOR_PREVIOUS, || {})? {
        stopped_meanwhile(paths)?;
    }
    if !orphan() {
        return Ok(());
    }
    Err(Error::io(
        "starting",
        std::io::Error::other(format!(
            "{} does not exist, but its WAL {} does, with commits in it: the database was moved \
             away or deleted without it; move the database back, or remove {} and its -shm to \
             begin a new one",
            paths.db.display(),
            wal.display(),
            wal.display()
        )),
    ))
}

/// Refuses a start where the database file is not the one the previous
/// arbiter, now gone, served here (`file`, its device and inode, from its lock
/// record) while that one's WAL (`wal`, the same file still), with frames
/// in it, is beside it: an arbiter killed, then a backup renamed over the
/// database. SQLite would read the new file through the old one's WAL:
/// the restore undone, or the file corrupted (helper 98). A clean stop
/// empties the WAL, so a restore made the documented way is never
/// refused, nor a database restored together with its own WAL.
///
/// # Errors
///
/// That refusal, saying what to do.
pub fn refuse_replaced(
    paths: &scribe_protocol::Paths,
    file: Option<(u64, u64)>,
    wal_then: Option<(u64, u64)>,
) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let (Some((dev, ino)), Some(wal_then)) = (file, wal_then) else {
        return Ok(());
    };
    let wal = paths.wal();
    // Still held: its arbiter lives (frozen, draining), and takes its WAL
    // from the path as it stops; `opening` waits for that.
    if let Some(file) = open(&wal)? {
        if imp::held_elsewhere(&file).map_err(|e| Error::io("looking at the WAL's lock", e))? {
            return Ok(());
        }
    }
    // The same WAL as then, past its 32-byte header: frames, commits of
    // the file it served.
    let theirs =
        std::fs::metadata(&wal).is_ok_and(|m| m.len() > 32 && (m.dev(), m.ino()) == wal_then);
    let now = std::fs::metadata(&paths.db).map(|m| (m.dev(), m.ino()));
    match now {
        Ok(now) if theirs && now != (dev, ino) => Err(Error::Replaced(format!(
            "{db} is not the file the last arbiter here served (inode {}, it served inode \
             {ino}), and that file's WAL {wal} is still beside it with commits in it: SQLite \
             would read this file through it. If {db} is a restore, remove {wal} and its -shm \
             (their commits are the replaced file's) and start again; if that WAL was restored \
             with it, remove {lock} instead; if neither, put back the file it served",
            now.1,
            db = paths.db.display(),
            wal = wal.display(),
            lock = paths.lock.display(),
        ))),
        _ => Ok(()),
    }
}

/// After waiting for a previous arbiter: refuses to go on when a stop
/// marker is live now (this arbiter was launched before a `scribe stop`,
/// or before its database was moved away, and would undo either).
///
/// # Errors
///
/// That refusal, with the marker's words.
pub fn stopped_meanwhile(paths: &scribe_protocol::Paths) -> Result<(), Error> {
    match scribe_protocol::stopmarker::read_active(&paths.stop_marker) {
        Some(marker) => Err(Error::io(
            "starting",
            std::io::Error::other(format!(
                "while this arbiter waited for the previous one, {}",
                marker.describe()
            )),
        )),
        None => Ok(()),
    }
}
