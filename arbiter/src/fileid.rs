//! The identity of a file (device and inode), to notice a path that no
//! longer names the file the arbiter opened or bound: a database moved
//! away, a socket or lock file deleted by a temp cleaner.

use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
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

    /// `(dev, ino)`.
    pub fn key(self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// This file as a hello states it (`path` is the name it was opened
    /// by).
    pub fn served(self, path: &Path) -> scribe_protocol::Served {
        scribe_protocol::Served {
            dev: self.dev,
            ino: self.ino,
            path: path.display().to_string(),
        }
    }

    /// True while `path` still names this file.
    pub fn is_at(self, path: &Path) -> bool {
        FileId::of(path).is_ok_and(|id| id == self)
    }

    /// True when this process holds the file open and no name is left to
    /// it (deleted, not moved: a moved file keeps a name elsewhere).
    pub fn is_deleted_here(self) -> bool {
        self.held_here()
            .ok()
            .flatten()
            .is_some_and(|f| f.metadata().is_ok_and(|m| m.nlink() == 0))
    }

    /// True when the file was deleted from `path`: nothing is there now
    /// (a file renamed over it is a replacement), and no name is left to
    /// the file this process holds.
    pub fn is_deleted_from(self, path: &Path) -> bool {
        !path.exists() && self.is_deleted_here()
    }

    /// This process's descriptor on the file, if it holds one, borrowed
    /// (never closed here): found through `/proc/self/fd` by identity,
    /// without opening the file anew (closing another descriptor on a
    /// database file would drop SQLite's locks on it).
    ///
    /// # Errors
    ///
    /// When `/proc/self/fd` cannot be read.
    pub fn held_here(self) -> std::io::Result<Option<ManuallyDrop<File>>> {
        for entry in std::fs::read_dir("/proc/self/fd")? {
            let Some(fd) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            // SAFETY: `fd` is open in this process (listed just now), and
            // the `File` is never dropped, so it is never closed here.
            // Should another thread close it and the number be reused
            // before the identity is checked, the identity is another
            // file's; what the caller does after that check is its own
            // to keep safe (see `walrestore`).
            let file = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
            if file
                .metadata()
                .is_ok_and(|m| m.is_file() && FileId::from_metadata(&m) == self)
            {
                return Ok(Some(file));
            }
        }
        Ok(None)
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
