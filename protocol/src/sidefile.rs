//! The files scribe keeps beside the database (the log, the lock record,
//! the stop marker) take the database file's permission bits, whatever
//! the umask of the process that makes them, as SQLite's `-wal` and
//! `-shm` do: every user who may write the database may then also append
//! to the log and replace the others, whoever started the arbiter first.
//! Only a file this process makes is given them, and never through a
//! link. Root gives nothing away: an arbiter root starts for another
//! user's database runs as that user and makes its files itself.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// How a side file of one database is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Like {
    /// The database file's read and write bits (never writable by others
    /// when root makes the file); `None` when it is not made yet (then
    /// the mode SQLite gives a new database, 0644, less the umask).
    mode: Option<u32>,
}

impl Like {
    /// Side files of the database at `db`.
    pub fn db(db: &Path) -> Like {
        let root = nix::unistd::geteuid().is_root();
        let mode = std::fs::metadata(db)
            .ok()
            .map(|m| m.mode() & if root { 0o664 } else { 0o666 });
        Like { mode }
    }

    /// The mode a side file is made with, when the database has one.
    pub fn mode(&self) -> Option<u32> {
        self.mode
    }

    /// Opens `path` for appending; a file this call makes is made as the
    /// database file is. One that exists is used as it is, and only if it
    /// is a regular file.
    ///
    /// # Errors
    ///
    /// The I/O error; `InvalidInput` for a path that names something
    /// other than a regular file.
    pub fn append(&self, path: &Path) -> std::io::Result<File> {
        // Never through a symlink (O_NOFOLLOW, and O_EXCL when making
        // it): the directory may be another user's to write, and a link
        // planted there must not lead this process to make or write a
        // file elsewhere. Never blocking on a FIFO planted there
        // (O_NONBLOCK, which a regular file ignores).
        let flags = nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK;
        let made = OpenOptions::new()
            .create_new(true)
            .append(true)
            .mode(self.mode.unwrap_or(0o644))
            .custom_flags(flags)
            .open(path);
        let file = match made {
            Ok(file) => {
                self.shape(&file);
                return Ok(file);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => OpenOptions::new()
                .append(true)
                .custom_flags(flags)
                .open(path)?,
            Err(e) => return Err(e),
        };
        if !file.metadata()?.file_type().is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            ));
        }
        Ok(file)
    }

    /// Writes `text` to `path` whole: beside it first, then renamed over
    /// it, so that a reader never sees half of it. The file beside is
    /// removed when the rename fails.
    ///
    /// # Errors
    ///
    /// The I/O error.
    pub fn replace(&self, path: &Path, text: &str) -> std::io::Result<()> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        // A file of our own, made now (O_EXCL: not a link planted at the
        // name, whose target would be written); one left by a run that
        // died is removed first.
        let _ = std::fs::remove_file(&tmp);
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(self.mode.unwrap_or(0o644))
            .open(&tmp)
            .and_then(|mut f| {
                self.shape(&f);
                f.write_all(text.as_bytes())
            })
            .and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// Gives a file this process just made the database file's mode
    /// (past the umask). At best: a file system that refuses (vfat's
    /// modes) keeps the file as made, which still works for whoever made
    /// it.
    fn shape(&self, file: &File) {
        if let Some(mode) = self.mode {
            let mode = nix::sys::stat::Mode::from_bits_truncate(mode as nix::libc::mode_t);
            let _ = nix::sys::stat::fchmod(file.as_fd(), mode);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_files_take_the_database_files_mode_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        std::fs::write(&db, b"").unwrap();
        std::fs::set_permissions(&db, std::os::unix::fs::PermissionsExt::from_mode(0o660)).unwrap();
        let like = Like::db(&db);
        // The test's umask is usually 022, which would make 0644.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
        let log = dir.path().join("x.db.scribe.log");
        like.append(&log).unwrap();
        let marker = dir.path().join("x.db.scribe.stopping");
        like.replace(&marker, "hold\n").unwrap();
        nix::sys::stat::umask(old);
        for p in [&log, &marker] {
            assert_eq!(std::fs::metadata(p).unwrap().mode() & 0o777, 0o660, "{p:?}");
        }
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "hold\n");
        // A log that exists, even empty (rotated), keeps the mode it has:
        // only a file this call makes is shaped.
        like.append(&log).unwrap().write_all(b"x").unwrap();
        std::fs::write(&log, b"").unwrap();
        std::fs::set_permissions(&log, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        like.append(&log).unwrap().write_all(b"y").unwrap();
        assert_eq!(std::fs::metadata(&log).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "y");
        // Something other than a regular file is refused, at once (a FIFO
        // would block an open for writing until a reader came).
        let fifo = dir.path().join("fifo.log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
        assert!(like.append(&fifo).is_err());
    }

    #[test]
    fn side_files_are_never_written_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let like = Like::db(&dir.path().join("missing.db"));
        let elsewhere = dir.path().join("elsewhere");
        let log = dir.path().join("x.db.scribe.log");
        std::os::unix::fs::symlink(&elsewhere, &log).unwrap();
        assert!(like.append(&log).is_err(), "opened through the link");
        assert!(!elsewhere.exists());
        // The name beside a replaced file, planted as a link: removed,
        // and the target left alone.
        let marker = dir.path().join("x.db.scribe.stopping");
        let mut tmp = marker.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&elsewhere, &tmp).unwrap();
        like.replace(&marker, "hold\n").unwrap();
        assert!(!elsewhere.exists());
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "hold\n");
    }

    #[test]
    fn a_failed_replace_leaves_no_file_beside() {
        let dir = tempfile::tempdir().unwrap();
        let like = Like::db(&dir.path().join("missing.db"));
        // Renaming a file over a directory fails.
        let target = dir.path().join("a-directory");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("inside"), b"").unwrap();
        assert!(like.replace(&target, "x").is_err());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("a-directory")]);
    }
}
