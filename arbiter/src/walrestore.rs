//! A WAL taken from its path under the arbiter, put back before it stops.
//!
//! When something deletes, renames or replaces `<db>-wal` while the
//! arbiter runs (by hand, a temp cleaner, a backup tool's hard link then
//! delete), the writer's connection goes on holding the file it opened:
//! every commit since the last checkpoint lives only there. The last
//! checkpoint at exit copies those frames into the database file, but
//! only as far as the oldest reader's snapshot allows; a reader that held
//! an old snapshot past the stop kept the rest in the held file, which
//! nobody opens again, and with it writes the arbiter had acknowledged.
//!
//! So before that checkpoint the held WAL is copied back to its path,
//! found among this process's descriptors by its identity (recorded at
//! open: [`Companions`]; `FileId::held_here`) and read through the
//! descriptor itself (Linux cannot link a deleted file back). The arbiter
//! is the only writer, so the WAL it holds is the one that describes the
//! database: a file found at the path
//! instead is set aside beside it, not destroyed. The copy is byte for
//! byte, so the shared-memory index still describes it; what the
//! checkpoint cannot copy now, the next opener recovers from the file.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::fileid::FileId;

/// A WAL file's header: anything shorter holds no frame.
const HEADER: u64 = 32;

/// The identities of the `-wal` and `-shm` files beside a database, as
/// they were when the arbiter opened it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Companions {
    /// The WAL.
    pub wal: Option<FileId>,
    /// The shared-memory index.
    pub shm: Option<FileId>,
}

impl Companions {
    /// Those beside the database at `db` now.
    pub fn of(db: &Path) -> Companions {
        Companions {
            wal: FileId::of(&suffixed(db, "-wal")).ok(),
            shm: FileId::of(&suffixed(db, "-shm")).ok(),
        }
    }

    /// Removes those still at their paths: the database they belong to
    /// was deleted, and a new one made at its path must not be read
    /// through them (a process still reading the deleted one keeps its
    /// own descriptors; SQLite could not remove them while it did).
    pub fn remove(self, db: &Path) {
        for (id, suffix) in [(self.wal, "-wal"), (self.shm, "-shm")] {
            let path = suffixed(db, suffix);
            if id.is_some_and(|id| id.is_at(&path)) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

impl Companions {
    /// Takes the held WAL and `-shm` away from the path of a database
    /// replaced under the arbiter, where SQLite would read them as the new
    /// file's (a restore came back with the rows it had taken away). A WAL
    /// that still holds frames (a reader's old snapshot kept the last
    /// checkpoint from emptying it) is set aside; an empty one and the
    /// `-shm` are removed. Says what it did.
    pub fn set_aside(self, db: &Path) -> TakenAway {
        let wal = suffixed(db, "-wal");
        let mut taken = TakenAway::Nothing;
        if self.wal.is_some_and(|id| id.is_at(&wal)) {
            if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let to = suffixed(db, &format!("-wal.of-a-replaced-file-{secs}"));
                if std::fs::rename(&wal, &to).is_ok() {
                    taken = TakenAway::Aside(to);
                }
            } else if std::fs::remove_file(&wal).is_ok() {
                taken = TakenAway::Removed;
            }
        }
        let shm = suffixed(db, "-shm");
        if self.shm.is_some_and(|id| id.is_at(&shm))
            && std::fs::remove_file(&shm).is_ok()
            && taken == TakenAway::Nothing
        {
            taken = TakenAway::Removed;
        }
        taken
    }
}

/// What [`Companions::set_aside`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum TakenAway {
    /// The files at the paths were not the ones held (a reset made new
    /// ones): left alone.
    Nothing,
    /// Removed (the WAL was empty).
    Removed,
    /// The WAL set aside under this name.
    Aside(PathBuf),
}

/// Removes a `-wal` and `-shm` beside a database that does not exist (see
/// [`Companions::remove`]).
pub fn remove_orphans(db: &Path) {
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(suffixed(db, suffix));
    }
}

/// What [`restore`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Restored {
    /// The path names the WAL this process holds, or it holds none.
    NotNeeded,
    /// The held WAL was copied back to its path (its size in bytes), and
    /// the file found there instead, if any, set aside under this name.
    Copied(u64, Option<PathBuf>),
}

/// Copies the WAL `held` of the database at `db` back to its path, when
/// this process holds it open and the path no longer names it.
///
/// # Errors
///
/// Reading the held file, or writing, syncing or renaming the copy.
pub fn restore(db: &Path, held: FileId) -> io::Result<Restored> {
    let wal = suffixed(db, "-wal");
    let there = FileId::of(&wal).ok();
    if there == Some(held) {
        return Ok(Restored::NotNeeded);
    }
    // Between this look-up and the reads, nothing closes a WAL
    // descriptor: the writer thread runs this, and the checkpointer's
    // connection is closed before (`Shared::stop_checkpointer`).
    let Some(held) = held
        .held_here()?
        .filter(|f| f.metadata().is_ok_and(|m| m.len() >= HEADER))
    else {
        return Ok(Restored::NotNeeded);
    };
    let pid = std::process::id();
    let tmp = suffixed(db, &format!("-wal.restoring-{pid}"));
    let copied = (|| {
        // This process's own name: one an earlier process of the same
        // pid left is written over.
        let mut out = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        let bytes = copy_at(&held, &mut out)?;
        out.sync_all()?;
        // A file with no header holds no frame (a reader made it): it is
        // replaced as it is.
        let framed = std::fs::metadata(&wal).is_ok_and(|m| m.len() >= HEADER);
        let aside = match there {
            Some(_) if framed => {
                let aside = free_name(db, &format!("-wal.replaced-{pid}"));
                std::fs::rename(&wal, &aside)?;
                Some(aside)
            }
            _ => None,
        };
        std::fs::rename(&tmp, &wal)?;
        if let Some(dir) = wal.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(Restored::Copied(bytes, aside))
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    copied
}

/// Copies `from` whole into `to` by position (the writer's own offset on
/// that descriptor is left alone).
fn copy_at(from: &File, to: &mut File) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 16];
    let mut at = 0u64;
    loop {
        let n = from.read_at(&mut buf, at)?;
        if n == 0 {
            return Ok(at);
        }
        to.write_all(&buf[..n])?;
        at += n as u64;
    }
}

/// `db` + `suffix`, or + `suffix-N` for the first N free: a file set
/// aside by an earlier try is never written over.
fn free_name(db: &Path, suffix: &str) -> PathBuf {
    let first = suffixed(db, suffix);
    if !first.exists() {
        return first;
    }
    (1..)
        .map(|n| suffixed(db, &format!("{suffix}-{n}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WAL at `wal` held open, and its identity.
    fn hold(wal: &Path) -> (File, FileId) {
        (File::open(wal).unwrap(), FileId::of(wal).unwrap())
    }

    #[test]
    fn a_held_wal_taken_from_its_path_is_copied_back_and_another_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        std::fs::write(&db, b"db").unwrap();
        let wal = dir.path().join("a.db-wal");
        let frames = vec![7u8; 5000];
        std::fs::write(&wal, &frames).unwrap();
        let (held, id) = hold(&wal);
        assert_eq!(restore(&db, id).unwrap(), Restored::NotNeeded);
        // Deleted.
        std::fs::remove_file(&wal).unwrap();
        assert_eq!(restore(&db, id).unwrap(), Restored::Copied(5000, None));
        assert_eq!(std::fs::read(&wal).unwrap(), frames);
        // Replaced by an empty file (a reader opened the database):
        // replaced in turn.
        drop(held);
        let (held, id) = hold(&wal);
        std::fs::remove_file(&wal).unwrap();
        std::fs::write(&wal, b"").unwrap();
        assert_eq!(restore(&db, id).unwrap(), Restored::Copied(5000, None));
        assert_eq!(std::fs::read(&wal).unwrap(), frames);
        // Renamed: the held file has a name still, elsewhere.
        drop(held);
        let (held, id) = hold(&wal);
        std::fs::rename(&wal, dir.path().join("elsewhere")).unwrap();
        assert_eq!(restore(&db, id).unwrap(), Restored::Copied(5000, None));
        assert_eq!(std::fs::read(&wal).unwrap(), frames);
        // Replaced by another WAL: set aside, not destroyed.
        drop(held);
        let (held, id) = hold(&wal);
        std::fs::remove_file(&wal).unwrap();
        let other = vec![1u8; 64];
        std::fs::write(&wal, &other).unwrap();
        let aside = dir
            .path()
            .join(format!("a.db-wal.replaced-{}", std::process::id()));
        assert_eq!(
            restore(&db, id).unwrap(),
            Restored::Copied(5000, Some(aside.clone()))
        );
        assert_eq!(std::fs::read(&wal).unwrap(), frames);
        assert_eq!(std::fs::read(&aside).unwrap(), other);
        // Again (a retry after a failed sync): the first set aside stays.
        std::fs::remove_file(&wal).unwrap();
        std::fs::write(&wal, &other[..40]).unwrap();
        let second = dir
            .path()
            .join(format!("a.db-wal.replaced-{}-1", std::process::id()));
        assert_eq!(
            restore(&db, id).unwrap(),
            Restored::Copied(5000, Some(second.clone()))
        );
        assert_eq!(std::fs::read(&aside).unwrap(), other);
        assert_eq!(std::fs::read(&second).unwrap(), &other[..40]);
        drop(held);
        // Not held (closed): nothing to copy.
        std::fs::remove_file(&wal).unwrap();
        assert_eq!(restore(&db, id).unwrap(), Restored::NotNeeded);
        assert!(!dir.path().read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("restoring")));
    }
}
