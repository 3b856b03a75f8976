//! Tests of `lockfile`.

use super::*;
use std::fs::OpenOptions;

#[test]
fn a_record_written_in_place_keeps_the_file_and_a_replaced_path_is_left_to_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.lock");
    std::fs::write(&path, "pid=1\nsocket=/a/long/old/path\n").unwrap();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    assert!(write_in_place(&file, &path, "pid=2\n").unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "pid=2\n");
    std::fs::remove_file(&path).unwrap();
    assert!(!write_in_place(&file, &path, "pid=3\n").unwrap());
    std::fs::write(&path, "other").unwrap();
    assert!(!write_in_place(&file, &path, "pid=3\n").unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "other");
}

#[test]
fn second_holder_is_refused_until_the_first_drops_even_without_the_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::for_db(&dir.path().join("x.db"), None).unwrap();
    let mut first = InstanceLock::try_acquire(&paths).unwrap().expect("free");
    first
        .record(Path::new("/s.sock"), Path::new("/s.http.sock"))
        .unwrap();
    assert!(InstanceLock::try_acquire(&paths).unwrap().is_none());
    assert!(is_held(&paths).unwrap());
    let info = read_info(&paths.lock);
    assert_eq!(info.pid, Some(std::process::id()));
    assert_eq!(info.socket.as_deref(), Some(Path::new("/s.sock")));
    std::fs::remove_file(&paths.lock).unwrap();
    #[cfg(target_os = "linux")]
    {
        assert!(
            InstanceLock::try_acquire(&paths).unwrap().is_none(),
            "deleting the lock file frees nothing"
        );
        assert!(is_held(&paths).unwrap());
    }
    assert!(first.keep_record(), "the record is written back");
    assert_eq!(read_info(&paths.lock).pid, Some(std::process::id()));
    assert!(!first.keep_record(), "nothing to do when it is in place");
    drop(first);
    assert!(!is_held(&paths).unwrap());
    assert!(InstanceLock::try_acquire(&paths).unwrap().is_some());
}

/// A program that reads the database with SQLite holds POSIX locks on
/// it, which any close of a descriptor of that file would drop.
#[cfg(target_os = "linux")]
#[test]
fn asking_whether_the_lock_is_held_leaves_this_processs_posix_locks_alone() {
    use nix::fcntl::{fcntl, FcntlArg};
    use nix::libc;
    use std::os::fd::AsFd;
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::for_db(&dir.path().join("x.db"), None).unwrap();
    let db = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&paths.db)
        .unwrap();
    // SQLite's shared lock, as a reader in WAL mode holds it.
    let range = |kind: libc::c_int| {
        // SAFETY: flock is a plain C struct; all-zero is a valid value.
        let mut f: libc::flock = unsafe { std::mem::zeroed() };
        f.l_type = kind as libc::c_short;
        f.l_whence = libc::SEEK_SET as libc::c_short;
        f.l_start = 0x4000_0002;
        f.l_len = 510;
        f
    };
    fcntl(db.as_fd(), FcntlArg::F_SETLK(&range(libc::F_RDLCK))).unwrap();
    // An open file description of its own sees this process's POSIX
    // lock as another owner's.
    let probe = File::open(&paths.db).unwrap();
    let still_there = || {
        let mut q = range(libc::F_WRLCK);
        fcntl(probe.as_fd(), FcntlArg::F_OFD_GETLK(&mut q)).unwrap();
        i32::from(q.l_type) != libc::F_UNLCK
    };
    assert!(still_there());
    assert!(!is_held(&paths).unwrap());
    let held = InstanceLock::try_acquire(&paths).unwrap().expect("free");
    assert!(is_held(&paths).unwrap());
    assert!(still_there(), "is_held closed no descriptor of the file");
    drop(held);
    // The probe can tell: the instance lock's own close dropped it.
    assert!(!still_there());
    drop(db);
}
