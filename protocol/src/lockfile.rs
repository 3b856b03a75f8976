//! Single instance: one arbiter per database file.
//!
//! The lock is held on the **database file itself**: on Linux an
//! open-file-description lock (`F_OFD_SETLK`) on one byte at
//! [`LOCK_OFFSET`], a range SQLite never locks, so it neither meets
//! SQLite's own locks nor is released when SQLite closes a descriptor of
//! the same file. Deleting the lock file, the socket or both therefore
//! cannot let a second arbiter start on the same database. Elsewhere it
//! falls back to `flock` on the lock file, whose record is then written
//! into the locked file itself; deleting that file by hand there can let a
//! second arbiter in.
//!
//! The kernel releases the lock when the holder dies, however it dies.
//! The pid, start time and socket written into `<db>.scribe.lock` are for
//! people and `status`; the arbiter writes them back if the file goes.
//! Liveness is the lock alone.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::paths::Paths;
use crate::sidefile::Like;

/// The byte of the database file that the arbiter locks: SQLite's lock
/// bytes are `[0x4000_0000, 0x4000_0202)`; this is past them.
pub const LOCK_OFFSET: i64 = 0x4000_0000 + 0x300;

/// Held for the arbiter's whole life; dropping it releases the lock.
#[derive(Debug)]
pub struct InstanceLock {
    /// The locked descriptor (the database file on Linux).
    held: imp::Held,
    info: PathBuf,
    text: String,
    like: Like,
    /// Unix seconds when the lock was taken: the arbiter's start.
    started: u64,
    /// The database file, whose identity the record carries.
    db: PathBuf,
    /// The previous arbiter's `file=` and `wal=` lines, kept in this one's
    /// record until it serves (a start that fails or is killed must not
    /// erase what the next start checks: see [`InstanceLock::carry`]).
    carried: String,
}

/// `file=DEV:INO` of the database file and `wal=DEV:INO` of its WAL as
/// they are now (each left out when it cannot be read): what a later
/// start compares the files it finds with.
fn file_line(db: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    id_lines(id(db), id(Path::new(&wal)))
}

/// The `file=` and `wal=` lines of a record (each left out when unknown).
fn id_lines(file: Option<(u64, u64)>, wal: Option<(u64, u64)>) -> String {
    let line = |name: &str, id: Option<(u64, u64)>| {
        id.map_or(String::new(), |(d, i)| format!("{name}={d}:{i}\n"))
    };
    line("file", file) + &line("wal", wal)
}

/// `DEV:INO` read back.
fn file_id(v: &str) -> Option<(u64, u64)> {
    let (d, i) = v.trim().split_once(':')?;
    Some((d.parse().ok()?, i.parse().ok()?))
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
    /// The HTTP socket it serves (recorded since the fallback name may be
    /// set aside, see `reach`).
    pub http_socket: Option<PathBuf>,
    /// What the holder is doing before it serves (see [`crate::starting`]);
    /// gone once its sockets are recorded.
    pub starting: Option<String>,
    /// Why its start failed, when it failed before it served (see
    /// [`crate::failed_start`]).
    pub failed: Option<String>,
    /// When it failed, in Unix milliseconds.
    pub failed_at: Option<u64>,
    /// The migrations at open it was applying.
    pub failed_dir: Option<PathBuf>,
    /// The fingerprint of what its start depended on, as it failed.
    pub failed_inputs: Option<String>,
    /// The device and inode of the database file it opened.
    pub file: Option<(u64, u64)>,
    /// The device and inode of its WAL.
    pub wal: Option<(u64, u64)>,
}

#[cfg(target_os = "linux")]
mod imp {
    use std::fs::{File, OpenOptions};
    use std::os::fd::AsFd;

    use nix::fcntl::{fcntl, FcntlArg};
    use nix::libc;

    use super::LOCK_OFFSET;
    use crate::paths::Paths;

    /// What keeps the lock: the open database file.
    pub type Held = File;

    /// The record is a file of its own here: replacing it is harmless.
    #[allow(clippy::unnecessary_wraps)]
    pub fn record_in_place(
        _held: &Held,
        _path: &std::path::Path,
        _text: &str,
    ) -> std::io::Result<bool> {
        Ok(false)
    }

    fn range(kind: libc::c_short) -> libc::flock {
        // SAFETY: flock is a plain C struct; all-zero is a valid value.
        let mut f: libc::flock = unsafe { std::mem::zeroed() };
        f.l_type = kind;
        f.l_whence = libc::SEEK_SET as libc::c_short;
        f.l_start = LOCK_OFFSET;
        f.l_len = 1;
        f
    }

    /// Opens (creating) the database file and locks its byte. A new
    /// file gets SQLite's mode (0644 less the umask), as a program
    /// opening it with SQLite would make it, not 0666.
    pub fn acquire(paths: &Paths) -> std::io::Result<Option<File>> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&paths.db)?;
        match fcntl(
            file.as_fd(),
            FcntlArg::F_OFD_SETLK(&range(libc::F_WRLCK as _)),
        ) {
            Ok(_) => Ok(Some(file)),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether some process holds the byte, asked with `F_OFD_GETLK` on a
    /// descriptor of the database this process keeps open until it exits:
    /// any close of a descriptor of that file drops every POSIX lock the
    /// process holds on it, SQLite's among them when a program reading the
    /// database asks. (`/proc/locks` names a file by a device number that
    /// `stat` does not always give: btrfs subvolumes, some overlays.)
    pub fn held(paths: &Paths) -> std::io::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        use std::sync::Mutex;
        static PROBES: Mutex<Vec<(u64, u64, File)>> = Mutex::new(Vec::new());
        let meta = match std::fs::metadata(&paths.db) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let mut probes = PROBES.lock().unwrap_or_else(|p| p.into_inner());
        let at = (meta.dev(), meta.ino());
        let index = match probes.iter().position(|(d, i, _)| (*d, *i) == at) {
            Some(i) => i,
            None => {
                let file = match File::open(&paths.db) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                    Err(e) => return Err(e),
                };
                // Filed under the inode it opened (the path may name another
                // by now); kept, never closed, either way.
                let opened = file.metadata()?;
                probes.push((opened.dev(), opened.ino(), file));
                probes.len() - 1
            }
        };
        let mut probe = range(libc::F_WRLCK as _);
        fcntl(probes[index].2.as_fd(), FcntlArg::F_OFD_GETLK(&mut probe))?;
        Ok(i32::from(probe.l_type) != libc::F_UNLCK)
    }
}

#[cfg(not(target_os = "linux"))]
#[path = "lockfile_flock.rs"]
mod imp;

/// Writes `text` into `file` when `path` still names it (returns false
/// when it does not: the caller writes a new file there).
#[cfg_attr(target_os = "linux", allow(dead_code))]
fn write_in_place(file: &File, path: &Path, text: &str) -> std::io::Result<bool> {
    use std::os::unix::fs::{FileExt, MetadataExt};
    let named = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let held = file.metadata()?;
    if (held.dev(), held.ino()) != (named.dev(), named.ino()) {
        return Ok(false);
    }
    file.set_len(0)?;
    file.write_all_at(text.as_bytes(), 0)?;
    Ok(true)
}

impl InstanceLock {
    /// Takes the lock without waiting; `Ok(None)` when another process
    /// holds it. Creates the database file if it does not exist (empty:
    /// SQLite makes it a database).
    ///
    /// # Errors
    ///
    /// [`Error::Lock`] when the file cannot be opened or locked.
    pub fn try_acquire(paths: &Paths) -> Result<Option<InstanceLock>, Error> {
        let held = imp::acquire(paths).map_err(|source| Error::Lock {
            path: paths.db.clone(),
            source,
        })?;
        Ok(held.map(|file| InstanceLock {
            held: file,
            info: paths.lock.clone(),
            text: String::new(),
            like: Like::db(&paths.db),
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            db: paths.db.clone(),
            carried: String::new(),
        }))
    }

    /// Keeps `previous`'s file and WAL identity in this arbiter's record
    /// until it serves: the files an arbiter killed had open, which a start
    /// checks a WAL left at the path against.
    pub fn carry(&mut self, previous: &LockInfo) {
        self.carried = id_lines(previous.file, previous.wal);
    }

    /// Records who holds the lock while it starts, without its sockets:
    /// clients follow a recorded socket, and one not bound yet may be
    /// another process's (a `--socket` given to the arbiters of two
    /// databases: the clients of the second were sent to the first).
    ///
    /// `phase` says what it does meanwhile, for the clients that wait
    /// (opening the database, applying migrations at open).
    ///
    /// # Errors
    ///
    /// [`Error::Lock`] when the file cannot be written.
    pub fn record_starting(&mut self, phase: &str) -> Result<(), Error> {
        self.text = format!(
            "pid={}\nstarted={}\nstarting={}\n{}",
            std::process::id(),
            self.started,
            phase.replace('\n', " "),
            self.carried
        );
        self.write()
    }

    /// Records that the start failed and why, before the lock is let go:
    /// auto-starters hold back a while rather than start arbiters that
    /// fail the same way, one after another (see [`crate::failed_start`]).
    /// `migrations` is the directory of migrations at open, if any; the
    /// files of `paths` and it are fingerprinted as they are now.
    ///
    /// # Errors
    ///
    /// [`Error::Lock`] when the file cannot be written.
    pub fn record_failed(
        &mut self,
        paths: &Paths,
        why: &str,
        migrations: Option<&Path>,
    ) -> Result<(), Error> {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        // A directory not recorded as it is named is not watched: its
        // change then lifts nothing, and the hold lasts its whole length.
        let migrations = migrations.filter(|d| d.to_str().is_some_and(|d| !d.contains('\n')));
        let dir = migrations
            .and_then(Path::to_str)
            .map_or(String::new(), |d| format!("failed_dir={d}\n"));
        let inputs = crate::failed_start::inputs(paths, migrations);
        self.text = format!(
            "pid={}\nstarted={}\nfailed_at={at}\nfailed={}\n{dir}failed_inputs={inputs}\n{}",
            std::process::id(),
            self.started,
            why.replace('\n', " "),
            self.carried
        );
        self.write()
    }

    /// Records who holds the lock, and the sockets it has bound, in the
    /// lock file.
    ///
    /// # Errors
    ///
    /// [`Error::Lock`] when the file cannot be written.
    pub fn record(&mut self, socket: &Path, http_socket: &Path) -> Result<(), Error> {
        let started = self.started;
        // Clients follow the sockets recorded: a path that is not UTF-8
        // would be recorded wrong, so it is left out (they derive it).
        let line = |name: &str, p: &Path| {
            p.to_str()
                .filter(|p| !p.contains('\n'))
                .map_or(String::new(), |p| format!("{name}={p}\n"))
        };
        self.text = format!(
            "pid={}\nstarted={started}\n{}{}{}",
            std::process::id(),
            line("socket", socket),
            line("http_socket", http_socket),
            file_line(&self.db)
        );
        self.write()
    }

    fn write(&self) -> Result<(), Error> {
        let lock_err = |source| Error::Lock {
            path: self.info.clone(),
            source,
        };
        // Off Linux the record is the locked file itself, rewritten in
        // place (a reader may then see it empty for a moment: `status`
        // decides liveness by the lock, never by the record).
        if imp::record_in_place(&self.held, &self.info, &self.text).map_err(lock_err)? {
            return Ok(());
        }
        // Write beside it and rename, so a reader never sees half a file;
        // made as the database file is, so that another user who may
        // write the database may replace it after this arbiter.
        self.like.replace(&self.info, &self.text).map_err(lock_err)
    }

    /// Writes the record back if the lock file went away or was changed
    /// (returns true when it did).
    pub fn keep_record(&self) -> bool {
        let current = std::fs::read_to_string(&self.info).unwrap_or_default();
        if current == self.text || self.text.is_empty() {
            return false;
        }
        self.write().is_ok()
    }
}

/// True when some process holds the lock (an arbiter is alive). Decided
/// by the lock alone, never by the pid written in the file.
///
/// # Errors
///
/// [`Error::Lock`] when the file exists but cannot be checked.
pub fn is_held(paths: &Paths) -> Result<bool, Error> {
    imp::held(paths).map_err(|source| Error::Lock {
        path: paths.db.clone(),
        source,
    })
}

/// When the arbiter that holds the lock records a socket other than
/// `paths.socket` (it was started with `--socket`), what to pass to reach
/// it; `None` otherwise.
pub fn socket_hint(paths: &Paths) -> Option<String> {
    let theirs = read_info(&paths.lock).socket?;
    (theirs != paths.socket).then(|| {
        format!(
            "the arbiter holding the lock listens on {} (it was started with --socket): \
             pass --socket {} or set SCRIBE_SOCKET",
            theirs.display(),
            theirs.display()
        )
    })
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
            Some(("http_socket", v)) => info.http_socket = Some(PathBuf::from(v.trim())),
            Some(("starting", v)) => info.starting = Some(v.trim().to_owned()),
            Some(("failed", v)) => info.failed = Some(v.trim().to_owned()),
            Some(("failed_at", v)) => info.failed_at = v.trim().parse().ok(),
            Some(("failed_dir", v)) => info.failed_dir = Some(PathBuf::from(v.trim())),
            Some(("failed_inputs", v)) => info.failed_inputs = Some(v.trim().to_owned()),
            Some(("file", v)) => info.file = file_id(v),
            Some(("wal", v)) => info.wal = file_id(v),
            _ => {}
        }
    }
    info
}

#[cfg(test)]
#[path = "lockfile_tests.rs"]
mod tests;
