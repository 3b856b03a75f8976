//! Restores made while the arbiter runs: a backup renamed over the
//! database, or copied into the live file with SQLite's backup API. What
//! the arbiter acknowledged after the restore stays; what the restore
//! took away is gone; a retried key is applied once at most.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{Env, SCHEMA};

/// A copy of `env`'s database at `to` (`VACUUM INTO`, read-only).
fn backup(env: &Env, to: &Path) {
    env.sqlite()
        .execute("VACUUM INTO ?1", [to.to_str().unwrap()])
        .unwrap();
}

/// `from` copied into `env`'s live database with SQLite's backup API.
fn restore(env: &Env, from: &Path) {
    let src = rusqlite::Connection::open(from).unwrap();
    let mut dst = env.sqlite();
    dst.busy_timeout(Duration::from_secs(30)).unwrap();
    rusqlite::backup::Backup::new(&src, &mut dst)
        .unwrap()
        .run_to_completion(100, Duration::ZERO, None)
        .unwrap();
}
/// A restore renames a backup over the database while its arbiter runs:
/// the next caller starts an arbiter on the restored file, which must not
/// use the WAL at that path while the old one still does. Before, it did:
/// its commits went into the old arbiter's WAL, and the old one's last
/// checkpoint copied that WAL into the file moved away and emptied it,
/// losing a write the new one had acknowledged. The old arbiter is frozen
/// here (SIGSTOP) so that it is still there, whatever the machine's speed.
#[test]
fn a_restore_renamed_over_the_database_loses_no_acknowledged_write() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let mut env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    env.insert_tagged("old", 3);
    let backup_db = env.dir.path().join("backup.db");
    backup(&env, &backup_db);
    env.scribe_ok(&[
        "exec",
        "INSERT INTO t(tag, i) VALUES ('after the backup', 0)",
    ]);
    let old = Pid::from_raw(env.arbiter_pid().expect("an arbiter") as i32);
    // Continued whatever happens, so that a failure leaves none frozen.
    struct Cont(Pid);
    impl Drop for Cont {
        fn drop(&mut self) {
            let _ = kill(self.0, Signal::SIGCONT);
        }
    }
    let _cont = Cont(old);
    kill(old, Signal::SIGSTOP).unwrap();
    std::fs::rename(&backup_db, &env.db).unwrap();
    let mut c = env.command(crate::harness::SCRIBE);
    c.args(["--ready-timeout", "60s", "--timeout", "60s", "exec"])
        .arg("INSERT INTO t(tag, i) VALUES ('restored', 0)")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let writer = env.spawn(c);
    // Until the new arbiter waits for the old one's WAL, or (before) the
    // write was acknowledged without waiting.
    let log = env.paths().log;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting = std::fs::read_to_string(&log).is_ok_and(|l| l.contains("still uses its WAL"));
        if waiting || env.exited(writer) {
            break;
        }
        assert!(Instant::now() < deadline, "neither waited nor wrote");
        std::thread::sleep(Duration::from_millis(10));
    }
    kill(old, Signal::SIGCONT).unwrap();
    let out = env.wait(writer, Duration::from_secs(90));
    assert!(out.status.success(), "{}", crate::harness::stderr(&out));
    env.scribe_ok(&["stop"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !env.arbiter_processes().is_empty() {
        assert!(Instant::now() < deadline, "arbiters left running");
        std::thread::sleep(Duration::from_millis(10));
    }
    let c = env.sqlite();
    let count = |tag: &str| -> i64 {
        c.query_row("SELECT count(*) FROM t WHERE tag = ?1", [tag], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(
        count("restored"),
        1,
        "the acknowledged write after the restore"
    );
    assert_eq!(count("old"), 3, "the restored rows");
    assert_eq!(count("after the backup"), 0, "the restore replaced these");
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

/// A restore through SQLite's backup API into the live file, while the
/// arbiter runs, puts back an older key table under the arbiter's index
/// of it. Before, every later write failed the index's check (a panic in
/// this debug build) and its caller waited out its timeout; now the
/// arbiter sees another connection's commit and files the keys again:
/// writes go on, and a key the restore took away is a new key again.
#[test]
fn a_restore_through_the_backup_api_into_the_live_file_leaves_writes_working() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    env.scribe_ok(&[
        "exec",
        "--key",
        "before",
        "INSERT INTO t(tag, i) VALUES ('old', 0)",
    ]);
    let backup_db = env.dir.path().join("backup.db");
    backup(&env, &backup_db);
    env.scribe_ok(&[
        "exec",
        "--key",
        "after",
        "INSERT INTO t(tag, i) VALUES ('after the backup', 0)",
    ]);
    restore(&env, &backup_db);
    for i in 1..=2 {
        env.scribe_ok(&[
            "--timeout",
            "30s",
            "exec",
            &format!("INSERT INTO t(tag, i) VALUES ('restored', {i})"),
        ]);
    }
    // Recorded before the backup: still known, not written twice.
    env.scribe_ok(&[
        "exec",
        "--key",
        "before",
        "INSERT INTO t(tag, i) VALUES ('old', 0)",
    ]);
    // Recorded after it: the restore took the write and its key away.
    env.scribe_ok(&[
        "exec",
        "--key",
        "after",
        "INSERT INTO t(tag, i) VALUES ('after the backup', 0)",
    ]);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'old'"), 1);
    assert_eq!(
        env.count("SELECT count(*) FROM t WHERE tag = 'restored'"),
        2
    );
    assert_eq!(
        env.count("SELECT count(*) FROM t WHERE tag = 'after the backup'"),
        1
    );
    let log = std::fs::read_to_string(env.paths().log).unwrap();
    assert!(!log.contains("panicked"), "{log}");
}

/// Two backup-API restores of two histories whose key tables end in
/// rows of the same rowid (one taken before a keyed write K1, written
/// back while the arbiter was down, then another write in its place; then
/// the backup that holds K1): the arbiter took the table for the one it
/// knew, and a retry of K1, whose write is in the file, was applied a
/// second time. The newest row's keys tell the two apart.
#[test]
fn a_key_in_a_restored_file_is_replayed_whatever_rowid_its_row_has() {
    let env = Env::new();
    env.scribe_ok(&["exec", "--key", "k0", SCHEMA]);
    let (b1, b2) = (env.dir.path().join("b1.db"), env.dir.path().join("b2.db"));
    backup(&env, &b1);
    env.scribe_ok(&[
        "exec",
        "--key",
        "K1",
        "INSERT INTO t(tag, i) VALUES ('K1', 1)",
    ]);
    backup(&env, &b2);
    env.scribe_ok(&["stop", "--grace", "0"]);
    restore(&env, &b1);
    env.scribe_ok(&[
        "exec",
        "--key",
        "K3",
        "INSERT INTO t(tag, i) VALUES ('K3', 3)",
    ]);
    restore(&env, &b2);
    let out = env.scribe_ok(&[
        "--json",
        "exec",
        "--key",
        "K1",
        "INSERT INTO t(tag, i) VALUES ('K1', 1)",
    ]);
    assert!(out.contains("\"replayed\":true"), "{out}");
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'K1'"), 1);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'K3'"), 0);
}

/// A restore renamed over the database while a reader holds an old
/// snapshot: the old arbiter's last checkpoint cannot empty its WAL, which
/// it left at the path, and SQLite replayed it onto the restored file
/// (the rows the restore took away came back; with another page layout,
/// pages of two databases mixed). The old arbiter sets it aside as it
/// stops.
#[test]
fn a_wal_the_replaced_file_leaves_is_set_aside_not_replayed() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    env.insert_tagged("before", 3);
    let backup_db = env.dir.path().join("backup.db");
    backup(&env, &backup_db);
    env.insert_tagged("after", 3);
    let reader = crate::hardening_wal::snapshot_of_t(&env, 6);
    let pid = env.arbiter_pid().expect("an arbiter");
    std::fs::rename(&backup_db, &env.db).unwrap();
    // It stops at its next connection (or within a second).
    let _ = env.scribe(&["status"]);
    crate::harness::wait_gone(pid, Duration::from_secs(60), "the old arbiter runs on");
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('restored', 0)"]);
    drop(reader);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'before'"), 3);
    assert_eq!(
        env.count("SELECT count(*) FROM t WHERE tag = 'after'"),
        0,
        "replayed"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM t WHERE tag = 'restored'"),
        1
    );
    let aside = std::fs::read_dir(env.dir.path())
        .unwrap()
        .flatten()
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .contains("-wal.of-a-replaced-file-")
        });
    assert!(aside, "the old WAL is kept aside");
}

/// A database copied with its WAL (a directory restored from a backup,
/// after a crash left the WAL unmerged): its WAL is its own, and is kept
/// (replayed as SQLite does).
#[test]
fn a_database_copied_with_its_wal_keeps_it() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    env.insert_tagged("kept", 3);
    env.kill9_arbiter();
    let copy = Env::new();
    for suffix in ["", "-wal", ".scribe.lock"] {
        let name = |db: &Path| format!("{}{suffix}", db.display());
        std::fs::copy(name(&env.db), name(&copy.db)).unwrap();
    }
    assert!(
        std::fs::metadata(format!("{}-wal", copy.db.display()))
            .unwrap()
            .len()
            > 0
    );
    // Only the WAL holds them (the file alone has not even the table):
    // a WAL set aside or left unread would show.
    let alone = rusqlite::Connection::open_with_flags(
        format!("file:{}?immutable=1", copy.db.display()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    assert!(alone
        .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
        .is_err());
    drop(alone);
    copy.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('new', 0)"]);
    assert_eq!(copy.count("SELECT count(*) FROM t WHERE tag = 'kept'"), 3);
    assert_eq!(copy.count("SELECT count(*) FROM t WHERE tag = 'new'"), 1);
}

/// A database moved away and back: its arbiter stopped when it went, and
/// the stopping marker it left held auto-start off for 30 s (up to 90)
/// after the same file was back. The marker names the file that went.
#[test]
fn a_database_moved_away_and_back_is_served_at_once() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    env.insert_tagged("kept", 3);
    let pid = env.arbiter_pid().expect("an arbiter");
    let away = env.dir.path().join("away.db");
    std::fs::rename(&env.db, &away).unwrap();
    crate::harness::wait_gone(
        pid,
        Duration::from_secs(60),
        "the arbiter serves a file moved away",
    );
    std::fs::rename(&away, &env.db).unwrap();
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('back', 0)"]);
    assert_eq!(env.count("SELECT count(*) FROM t"), 4);
}

/// A database moved away while no arbiter ran, its WAL still holding
/// commits (the arbiter was killed): a new file made at the path would be
/// read through that WAL. No arbiter starts there; it says why, and once
/// the database is back every commit is there.
#[test]
fn no_database_is_made_where_a_wal_with_commits_lies() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    env.insert_tagged("kept", 3);
    env.kill9_arbiter();
    let away = env.dir.path().join("away.db");
    std::fs::rename(&env.db, &away).unwrap();
    let out = env.scribe(&["exec", "INSERT INTO t(tag, i) VALUES ('new', 0)"]);
    assert_eq!(
        out.status.code(),
        Some(10),
        "{}",
        crate::harness::stderr(&out)
    );
    assert!(
        crate::harness::stderr(&out).contains("its WAL"),
        "{}",
        crate::harness::stderr(&out)
    );
    assert!(!env.db.exists(), "a new database was made");
    std::fs::rename(&away, &env.db).unwrap();
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('back', 0)"]);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'kept'"), 3);
}

/// An arbiter launched while the database was away waits for the one
/// that served it to let go of its WAL; the file came back, and then
/// `scribe stop --hold` stopped the one serving it: the waiting one
/// started at once, undoing the stop (a write with auto-start off then
/// committed). It looks at the stop marker once its wait is over.
#[test]
fn an_arbiter_that_waited_does_not_undo_a_stop() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    env.insert_tagged("kept", 3);
    let first = Pid::from_raw(env.arbiter_pid().expect("an arbiter") as i32);
    // Frozen, it cannot notice the move; continued whatever happens.
    struct Cont(Pid);
    impl Drop for Cont {
        fn drop(&mut self) {
            let _ = kill(self.0, Signal::SIGCONT);
        }
    }
    let cont = Cont(first);
    kill(first, Signal::SIGSTOP).unwrap();
    let away = env.dir.path().join("away.db");
    std::fs::rename(&env.db, &away).unwrap();
    let log = env.dir.path().join("second.log");
    let mut c = env.command(crate::harness::SCRIBED);
    c.arg("--db")
        .arg(&env.db)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut second = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("still uses its WAL")) {
        assert!(Instant::now() < deadline, "the second arbiter did not wait");
        assert!(
            second.try_wait().unwrap().is_none(),
            "the second arbiter did not wait"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::rename(&away, &env.db).unwrap();
    drop(cont);
    env.scribe_ok(&["stop", "--hold"]);
    let status = crate::harness::wait_exit(&mut second, Duration::from_secs(60));
    let _ = second.kill();
    assert!(!status.success(), "it started after the stop");
    let out = env.scribe(&[
        "--no-autostart",
        "exec",
        "INSERT INTO t(tag, i) VALUES ('late', 0)",
    ]);
    assert!(!out.status.success(), "a write went through after the stop");
    assert_eq!(env.count("SELECT count(*) FROM t"), 3);
}
