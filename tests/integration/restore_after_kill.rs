//! A backup renamed over the database after its arbiter was killed, the
//! killed arbiter's WAL left beside it: SQLite would read the backup
//! through that WAL, undoing the restore or corrupting the file (helper
//! 98). The next start refuses, saying why and what to do; once the WAL
//! is removed the restore is served as it was.

use crate::harness::{stderr, Env, SCHEMA};

/// A read transaction held open on `env`'s database, read only: it keeps
/// the arbiter from emptying the WAL, so commits made meanwhile are still
/// in it when the arbiter is killed (and closing it checkpoints nothing).
fn snapshot_held(env: &Env) -> rusqlite::Connection {
    let reader =
        rusqlite::Connection::open_with_flags(&env.db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM t;")
        .unwrap();
    reader
}

/// Rows tagged `before` (3), a backup of them, then a snapshot held and
/// rows tagged `after` (3), in the WAL: the backup's path and the reader.
fn backup_then_more(env: &Env) -> (std::path::PathBuf, rusqlite::Connection) {
    env.scribe_ok(&["exec", SCHEMA]);
    env.insert_tagged("before", 3);
    let backup = env.dir.path().join("backup.db");
    let at = backup.to_str().unwrap();
    env.scribe_ok(&["query", &format!("VACUUM INTO '{at}'")]);
    let reader = snapshot_held(env);
    env.insert_tagged("after", 3);
    (backup, reader)
}

#[test]
fn a_backup_renamed_over_a_killed_arbiters_file_is_not_read_through_its_wal() {
    let env = Env::new();
    let (backup, reader) = backup_then_more(&env);
    env.kill9_arbiter();
    drop(reader);
    let wal = env.paths().wal();
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 32,
        "the WAL holds commits"
    );
    std::fs::rename(&backup, &env.db).unwrap();

    let out = env.scribe(&["exec", "INSERT INTO t(tag, i) VALUES ('restored', 1)"]);
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not the file the last arbiter here served"),
        "{}",
        stderr(&out)
    );
    assert!(env.arbiter_processes().is_empty());

    // As the refusal says: the WAL is the replaced file's.
    std::fs::remove_file(&wal).unwrap();
    let _ = std::fs::remove_file(env.db.with_extension("db-shm"));
    env.scribe_ok(&["start"]);
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('restored', 1)"]);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'before'"), 3);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'after'"), 0);
    assert_eq!(
        env.count("SELECT count(*) FROM t WHERE tag = 'restored'"),
        1
    );
    let ok: String = env
        .sqlite()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");

    // A database restored together with its own WAL (both copied back:
    // new files, the WAL's commits theirs) is served, commits and all.
    let reader = snapshot_held(&env);
    env.insert_tagged("tail", 3);
    env.kill9_arbiter();
    drop(reader);
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 32,
        "the WAL holds commits"
    );
    for p in [&env.db, &wal] {
        let copy = p.with_extension("copy");
        std::fs::copy(p, &copy).unwrap();
        std::fs::remove_file(p).unwrap();
        std::fs::rename(&copy, p).unwrap();
    }
    let _ = std::fs::remove_file(env.db.with_extension("db-shm"));
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('restored', 2)"]);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'tail'"), 3);
}

/// The same restore while the old arbiter is frozen (SIGSTOP): the new
/// one waits for it to let go of the WAL, and the old one is then killed.
/// The waiting arbiter served the backup read through the dead one's WAL
/// (helper 100); it refuses, as a start after the kill does, and the
/// refusal is recorded as a failed start.
#[test]
fn a_start_that_waited_for_a_killed_arbiter_refuses_its_wal_too() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let mut env = Env::new();
    let (backup, reader) = backup_then_more(&env);
    let old = Pid::from_raw(env.arbiter_pid().expect("an arbiter") as i32);
    kill(old, Signal::SIGSTOP).unwrap();
    drop(reader);
    std::fs::rename(&backup, &env.db).unwrap();
    let mut c = env.command(crate::harness::SCRIBE);
    c.args(["--ready-timeout", "60s", "start"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let starter = env.spawn(c);
    let log = env.paths().log;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("still uses its WAL")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the new arbiter never waited"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    kill(old, Signal::SIGKILL).unwrap();
    let out = env.wait(starter, std::time::Duration::from_secs(90));
    assert!(
        !out.status.success(),
        "served: {out:?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(
        stderr(&out).contains("is not the file the last arbiter here served"),
        "{}",
        stderr(&out)
    );
    let record = std::fs::read_to_string(env.paths().lock).unwrap();
    assert!(record.contains("failed="), "{record}");
}
