//! The identity of a file (device and inode), to notice a path that no
//! longer names the file the arbiter opened or bound: a database moved
//! away, a socket or lock file deleted by a temp cleaner.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A file's device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of the file at `path` now (a symlink is followed, as
    /// SQLite follows it).
    ///
    /// # Errors
    ///
    /// When it cannot be read (the file is gone).
    pub fn of(path: &Path) -> std::io::Result<FileId> {
        Ok(FileId::from_metadata(&std::fs::metadata(path)?))
    }

    /// The identity `m` describes.
    pub fn from_metadata(m: &std::fs::Metadata) -> FileId {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
        }
    }

    /// True while `path` still names this file.
    pub fn is_at(self, path: &Path) -> bool {
        FileId::of(path).is_ok_and(|id| id == self)
    }

    /// True when this process holds the file open and no name is left to
    /// it (deleted, not moved: a moved file keeps a name elsewhere). Looks
    /// through `/proc/self/fd` by identity, without opening the file (a
    /// close of another descriptor on a database file would drop SQLite's
    /// locks on it).
    pub fn is_deleted_here(self) -> bool {
        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
            return false;
        };
        fds.flatten().any(|fd| {
            std::fs::metadata(fd.path()).is_ok_and(|m| {
                FileId {
                    dev: m.dev(),
                    ino: m.ino(),
                } == self
                    && m.nlink() == 0
            })
        })
    }

    /// True when `path` is known to name another file or none: a path that
    /// cannot be read now (its directory made unsearchable, a stale NFS
    /// handle) is not known to have changed.
    pub fn is_gone_from(self, path: &Path) -> bool {
        match FileId::of(path) {
            Ok(id) => id != self,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        }
    }
}
