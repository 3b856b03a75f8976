//! One arbiter per database, recovery after a crash, reads without one.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{run, stderr, stdout, wait_exit, Env, SCHEMA, SCRIBED};

#[test]
fn a_second_arbiter_on_the_same_database_says_already_running() {
    let mut env = Env::new();
    let first = env.start_arbiter(&[]);
    let mut c = env.command(SCRIBED);
    c.arg("--db").arg(&env.db);
    let out = run(c, Duration::from_secs(20));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("already running (pid {first})")
    );
    assert_eq!(env.arbiter_pid(), Some(first));
}

#[test]
fn a_stale_socket_from_a_killed_arbiter_does_not_stop_the_next_start() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]); // auto-starts
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('before', 1)"]);
    let first = env.arbiter_pid().expect("auto-started");
    env.kill9_arbiter();
    assert!(
        env.paths().socket.exists(),
        "the killed arbiter left its socket"
    );
    // Nothing is waited out (the lock went with the process, the socket
    // refuses): the CLI's own deadlines bound the restart.
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('after', 1)"]);
    let second = env.arbiter_pid().expect("restarted");
    assert_ne!(first, second);
    assert_eq!(env.count("SELECT count(*) FROM t"), 2);
}

#[test]
fn reads_work_with_the_arbiter_stopped() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('kept', 7)"]);
    let out = env.scribe_ok(&["stop"]);
    assert!(out.starts_with("stopped scribed (pid "), "{out}");
    assert_eq!(env.arbiter_pid(), None);
    assert!(!env.paths().socket.exists(), "stop removes the socket");
    let rows = env.scribe_ok(&["--no-autostart", "--json", "query", "SELECT tag, i FROM t"]);
    assert_eq!(rows.trim(), r#"[{"tag":"kept","i":7}]"#);
    assert_eq!(env.arbiter_pid(), None, "a read never starts the arbiter");
}

#[test]
fn reading_a_missing_database_asks_the_arbiter_to_create_it() {
    let env = Env::new();
    assert!(!env.db.exists());
    let out = env.scribe_ok(&["--json", "query", "SELECT seq AS n FROM _scribe_seq"]);
    assert_eq!(out.trim(), r#"[{"n":0}]"#);
    assert!(env.arbiter_pid().is_some());
    // With auto-start off, a missing database is an `Unavailable` error.
    let other = Env::new();
    let out = other.scribe(&["--no-autostart", "query", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(!other.db.exists(), "a reader never creates the file");
}

#[test]
fn an_arbiter_that_cannot_start_fails_fast_with_the_reason() {
    let env = Env::new();
    // A database in a directory that does not exist.
    let missing = env.dir.path().join("nope").join("x.db");
    // Fast means the failed start is reported as it happens, not after the
    // wait for readiness: that wait is made long, and the bound half of it.
    let failed_start = |db: &std::path::Path| {
        let started = Instant::now();
        let out = env.scribe(&[
            "--db",
            db.to_str().unwrap(),
            "--ready-timeout",
            "120s",
            "exec",
            "SELECT 1",
        ]);
        assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
        assert!(started.elapsed() < Duration::from_secs(60));
        out
    };
    let out = failed_start(&missing);
    assert!(
        stderr(&out).contains("cannot write its log"),
        "{}",
        stderr(&out)
    );

    // A file that is not a database.
    let junk = env.dir.path().join("junk.db");
    std::fs::write(&junk, vec![b'x'; 8192]).unwrap();
    let out = failed_start(&junk);
    assert!(stderr(&out).contains("not a database"), "{}", stderr(&out));
}

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let env = Env::new();
    let mut arbiter = env.foreground_arbiter();
    env.scribe_ok(&["exec", SCHEMA]);
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('x', 1)"]);
    kill(Pid::from_raw(arbiter.id() as i32), Signal::SIGTERM).unwrap();
    let status = wait_exit(&mut arbiter, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    assert!(!env.paths().socket.exists());
    assert_eq!(env.arbiter_pid(), None, "lock released");
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
}

#[test]
fn the_cli_runs_the_arbiter_itself_when_no_scribed_is_installed() {
    let env = Env::new();
    // A lone copy of the CLI: no scribed beside it, none on PATH.
    let lone = env.dir.path().join("scribe");
    std::fs::copy(crate::harness::SCRIBE, &lone).unwrap();
    let mut c = env.command(lone.to_str().unwrap());
    c.env_remove("SCRIBE_ARBITER_BIN")
        .env("PATH", "/usr/bin:/bin")
        .args(["exec", SCHEMA]);
    let out = run(c, Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = env.arbiter_pid().expect("an arbiter runs");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    assert_eq!(
        args[1..3],
        ["arbiter".to_owned(), "--".to_owned()],
        "{args:?}"
    );
    env.scribe_ok(&["stop", "--grace", "0s"]);
}

/// A symlink to the database file reaches the arbiter of the file it
/// points at (SQLite follows it too, to name the WAL): one arbiter,
/// whichever name a program uses.
#[test]
fn a_symlink_to_the_database_reaches_its_arbiter() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    let link = env.dir.path().join("link.db");
    std::os::unix::fs::symlink(&env.db, &link).unwrap();
    let mut c = env.command(crate::harness::SCRIBE);
    c.env("SCRIBE_DB", &link)
        .args(["exec", "INSERT INTO t(tag, i) VALUES ('link', 1)"]);
    let out = run(c, crate::harness::COMMAND_TIMEOUT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'link'"), 1);
    assert_eq!(env.arbiter_processes().len(), 1);
    assert!(!env.dir.path().join("link.db.scribe.sock").exists());
}

#[test]
fn a_hard_link_to_the_database_is_named_as_such() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    let hard = env.dir.path().join("hard.db");
    std::fs::hard_link(&env.db, &hard).unwrap();
    // `scribe ARGS` through the link: its exit code, and that it names why.
    let through_link = |args: &[&str]| {
        let out = env.scribe_at(&hard, args);
        assert!(stderr(&out).contains("(a hard link)"), "{}", stderr(&out));
        out.status.code()
    };
    // Not "pid 0": the lock is the file's, its record the other name's.
    assert_eq!(through_link(&["status"]), Some(10));
    // A read through it would miss the commits in the other name's WAL
    // (it said "no such table: t"): refused, naming why.
    assert_eq!(through_link(&["query", "SELECT count(*) FROM t"]), Some(16));
    assert!(!env.dir.path().join("hard.db-wal").exists());
    // A write through it: refused, naming why (it waited for an answer
    // on this name's socket, then said the arbiter was already running).
    assert_eq!(
        through_link(&["exec", "INSERT INTO t(tag, i) VALUES ('link', 1)"]),
        Some(16)
    );
    assert_eq!(env.count("SELECT count(*) FROM t"), 0);
}

#[test]
fn an_arbiter_on_another_socket_is_found_or_named_at_once() {
    let env = Env::new();
    let custom = env.dir.path().join("custom.sock");
    let custom = custom.to_str().unwrap();
    env.scribe_ok(&["--socket", custom, "start"]);
    // Without --socket: the lock record names where it listens.
    let out = env.scribe_ok(&["exec", "CREATE TABLE t(x)"]);
    assert!(out.contains("committed"), "{out}");
    // With another --socket: that is the caller's choice; it is told.
    let other = env.dir.path().join("other.sock");
    for args in [&["exec", "SELECT 1"][..], &["status"][..]] {
        let mut all = vec!["--socket", other.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = env.scribe(&all);
        assert_eq!(out.status.code(), Some(10), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("pass --socket {custom}")),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    env.scribe_ok(&["--socket", custom, "stop"]);
}

/// `exec --retry-for` covers the connection too: with no arbiter and
/// auto-start off it waits for one to start (it failed at once, "no
/// arbiter is running", whatever `--retry-for` said).
#[test]
fn exec_retry_for_waits_for_an_arbiter_to_answer() {
    let mut env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    env.scribe_ok(&["stop", "--grace", "0"]);
    let mut c = env.command(crate::harness::SCRIBE);
    c.args([
        "--no-autostart",
        "exec",
        "--retry-for",
        "120s",
        "INSERT INTO t(tag, i) VALUES ('waited', 1)",
    ]);
    let writer = env.spawn(c);
    // Not a wait for a condition: the write passes either way here, but
    // started at once, the arbiter could be there before the write's first
    // try, and the test would pass without the retry.
    std::thread::sleep(Duration::from_millis(500));
    env.scribe_ok(&["start"]);
    let out = env.wait(writer, Duration::from_secs(120));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'waited'"), 1);
}

/// A hard link made while an arbiter served, then the arbiter killed: its
/// last commits are in the WAL beside its own name only. An arbiter
/// started through the link read the file without them, took their seqs
/// again, and its commits were then written over by the first name's WAL
/// (helper 88). Now no arbiter starts on a file with two names and no
/// read goes through one unserved; nothing is lost, and once the link is
/// gone the first name recovers every commit.
#[test]
fn a_database_with_two_names_is_not_served_after_a_crash_and_loses_nothing() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    env.insert_tagged("before", 5);
    let hard = env.dir.path().join("hard.db");
    std::fs::hard_link(&env.db, &hard).unwrap();
    env.kill9_arbiter();
    let through = |db: &std::path::Path, args: &[&str]| {
        let out = env.scribe_at(db, args);
        assert!(
            stderr(&out).contains("has 2 names (hard links)"),
            "{args:?}: {}",
            stderr(&out)
        );
        out.status.code()
    };
    let insert = ["exec", "INSERT INTO t(tag, i) VALUES ('link', 1)"];
    // Through the link and through the first name alike: no start.
    assert_eq!(through(&hard, &insert), Some(10));
    assert_eq!(through(&env.db, &insert), Some(10));
    // A read through the link would miss the commits in the first name's
    // WAL; through either name, none is served.
    assert_eq!(
        through(&hard, &["query", "SELECT count(*) FROM t"]),
        Some(16)
    );
    assert!(!env.dir.path().join("hard.db-wal").exists());
    std::fs::remove_file(&hard).unwrap();
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('after', 1)"]);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'before'"), 5);
    assert_eq!(env.count("SELECT count(*) FROM t"), 6);
}

/// A database renamed away leaves its lock record beside the old name; a
/// hard link made there later is not the name served, record or not
/// (helper 89: reads through it passed, stale, and made a WAL beside it).
#[test]
fn a_link_beside_an_old_lock_record_is_not_taken_for_the_served_name() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    env.scribe_ok(&["stop"]);
    let moved = env.dir.path().join("moved.db");
    std::fs::rename(&env.db, &moved).unwrap();
    assert!(env.paths().lock.exists(), "the old record stays");
    let through = |db: &std::path::Path, args: &[&str]| env.scribe_at(db, args);
    let out = through(&moved, &["exec", "INSERT INTO t(tag, i) VALUES ('m', 1)"]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::hard_link(&moved, &env.db).unwrap();
    let out = through(&env.db, &["query", "SELECT count(*) FROM t"]);
    assert_eq!(out.status.code(), Some(16), "{}", stdout(&out));
    assert!(stderr(&out).contains("(a hard link)"), "{}", stderr(&out));
    assert!(!env.dir.path().join("t.db-wal").exists());
    let out = through(&moved, &["query", "SELECT count(*) FROM t"]);
    assert!(stdout(&out).contains(" 1 "), "{}", stdout(&out));
    assert!(through(&moved, &["stop"]).status.success());
}
