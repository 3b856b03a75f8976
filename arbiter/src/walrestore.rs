//! A WAL deleted under the arbiter, put back before it stops.
//!
//! When something deletes `<db>-wal` while the arbiter runs (by hand, a
//! temp cleaner), the writer's connection goes on holding the deleted
//! file open: every commit since the last checkpoint lives only there.
//! The last checkpoint at exit copies those frames into the database
//! file, but only as far as the oldest reader's snapshot allows; a
//! reader that held an old snapshot past the stop kept the rest in the
//! deleted file, which vanished with the arbiter's descriptor, and with
//! it writes the arbiter had acknowledged.
//!
//! So before that checkpoint the deleted WAL is copied back to its path
//! (through `/proc/self/fd`: Linux cannot link a deleted file back).
//! The copy is byte for byte, so the shared-memory index still describes
//! it and readers that open it from now on see what the writer
//! committed; whatever the checkpoint cannot copy now, the next opener
//! recovers from the file.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A WAL file's header: anything shorter holds no frame.
const HEADER: u64 = 32;

/// What [`restore`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Restored {
    /// This process holds no deleted WAL of this database.
    NotNeeded,
    /// The deleted WAL was copied back to its path (its size in bytes).
    Copied(u64),
    /// Another WAL with frames, not an older copy of this one, is at the
    /// path now: left alone (replacing it could lose what its writer
    /// wrote).
    PathTaken,
}

/// Copies the WAL of the database at `db` back to its path when this
/// process holds it open and it was deleted.
///
/// # Errors
///
/// Reading the deleted file, or writing, syncing or renaming the copy.
pub fn restore(db: &Path) -> io::Result<Restored> {
    // SQLite opens the WAL beside the database's real file (it follows
    // a symlink), and /proc names it by that absolute path.
    let Ok(db) = db.canonicalize() else {
        return Ok(Restored::NotNeeded);
    };
    let wal = suffixed(&db, "-wal");
    let Some(mut held) = deleted_open_file(&wal)? else {
        return Ok(Restored::NotNeeded);
    };
    if let Ok(there) = File::open(&wal) {
        if there.metadata()?.len() >= HEADER && !is_prefix(&there, &held)? {
            return Ok(Restored::PathTaken);
        }
    }
    let tmp = suffixed(&db, &format!("-wal.restoring-{}", std::process::id()));
    let copied = (|| {
        let mut out = File::options().write(true).create_new(true).open(&tmp)?;
        let n = io::copy(&mut held, &mut out)?;
        out.sync_all()?;
        // Over an empty WAL a reader made meanwhile (it holds no frame),
        // or an older copy of this one put back (`cp` then `mv`).
        std::fs::rename(&tmp, &wal)?;
        if let Some(dir) = wal.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(n)
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    copied.map(Restored::Copied)
}

/// This process's open descriptor on the deleted file once at `path`,
/// opened again for reading from its start.
fn deleted_open_file(path: &Path) -> io::Result<Option<File>> {
    let gone = PathBuf::from(format!("{} (deleted)", path.display()));
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let fd = entry?.path();
        if std::fs::read_link(&fd).is_ok_and(|target| target == gone) {
            // Opening the /proc link gives a new description on the
            // same file: the writer's own offset is left alone.
            let file = File::open(&fd)?;
            if file.metadata()?.nlink() == 0 {
                return Ok(Some(file));
            }
        }
    }
    Ok(None)
}

/// True when `short`'s bytes begin `long` (both read from their start;
/// `long` is left at its start again).
fn is_prefix(mut short: &File, long: &File) -> io::Result<bool> {
    use std::io::{Read, Seek};
    let mut long_reader = long;
    let (mut a, mut b) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let same = loop {
        let n = short.read(&mut a)?;
        if n == 0 {
            break true;
        }
        if long_reader.read_exact(&mut b[..n]).is_err() || a[..n] != b[..n] {
            break false;
        }
    };
    long_reader.rewind()?;
    Ok(same)
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_file_held_open_is_copied_back_and_a_present_one_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a.db");
        std::fs::write(&db, b"db").unwrap();
        let wal = dir.path().join("a.db-wal");
        let frames = vec![7u8; 5000];
        std::fs::write(&wal, &frames).unwrap();
        let held = File::open(&wal).unwrap();
        assert_eq!(restore(&db).unwrap(), Restored::NotNeeded);
        std::fs::remove_file(&wal).unwrap();
        assert_eq!(restore(&db).unwrap(), Restored::Copied(5000));
        assert_eq!(std::fs::read(&wal).unwrap(), frames);
        // The path names a live file again: nothing more to do.
        drop(held);
        assert_eq!(restore(&db).unwrap(), Restored::NotNeeded);
        // An older copy of the held WAL put in its place is replaced;
        // another WAL is left alone.
        let held = File::open(&wal).unwrap();
        std::fs::remove_file(&wal).unwrap();
        std::fs::write(&wal, &frames[..100]).unwrap();
        assert_eq!(restore(&db).unwrap(), Restored::Copied(5000));
        assert_eq!(std::fs::read(&wal).unwrap(), frames);
        drop(held);
        let other = File::open(&wal).unwrap();
        std::fs::remove_file(&wal).unwrap();
        std::fs::write(&wal, vec![1u8; 64]).unwrap();
        assert_eq!(restore(&db).unwrap(), Restored::PathTaken);
        assert_eq!(std::fs::read(&wal).unwrap(), vec![1u8; 64]);
        drop(other);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no copy left behind: {names:?}");
    }
}
