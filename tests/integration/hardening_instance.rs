//! Hardening, lifecycle side: removing the lock file, the socket or both
//! never gives two writers; commands decide liveness by the lock; a
//! database moved away stops its arbiter; markers expire; start and stop
//! racing each other end cleanly.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::hardening_wal::snapshot_of_empty_t;
use crate::harness::{output_within, run, stderr, stdout, Env, COMMAND_TIMEOUT, SCHEMA, SCRIBE};

/// `ready` lines (one per arbiter that served) in the auto-start log.
fn arbiters_that_served(env: &Env) -> usize {
    std::fs::read_to_string(env.paths().log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" ready "))
        .count()
}

/// 8 `scribe exec` processes at once, each inserting one row with
/// `--json`; returns the seqs of their receipts.
fn eight_writers(env: &Env, round: &str) -> Vec<i64> {
    let children: Vec<_> = (0..8)
        .map(|i| {
            let mut c = env.command(SCRIBE);
            c.args([
                "--json",
                "--ready-timeout",
                "20s",
                "exec",
                "INSERT INTO t(tag, i) VALUES (?, ?)",
                "-p",
                round,
                "-p",
                &i.to_string(),
            ]);
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = output_within(c, COMMAND_TIMEOUT, "a writer");
            assert!(
                out.status.success(),
                "{round}: {}{}",
                stdout(&out),
                stderr(&out)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            v["seq"].as_i64().unwrap()
        })
        .collect()
}

#[test]
fn removing_the_lock_file_or_the_socket_never_makes_a_second_writer() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    let first = env.arbiter_pid().expect("auto-started");
    let paths = env.paths();
    let start_seq = env.count("SELECT seq FROM _scribe_seq");
    let mut seqs = BTreeSet::new();
    let mut receipts = 0;
    for (round, remove) in [
        ("lock", vec![&paths.lock]),
        ("socket", vec![&paths.socket]),
        ("both", vec![&paths.lock, &paths.socket]),
        ("all", vec![&paths.lock, &paths.socket, &paths.http_socket]),
    ] {
        for p in remove {
            std::fs::remove_file(p).unwrap();
        }
        let got = eight_writers(&env, round);
        receipts += got.len();
        seqs.extend(got);
        assert!(
            env.arbiter_processes().contains(&first),
            "{round}: the first still serves"
        );
        assert_eq!(
            arbiters_that_served(&env),
            1,
            "{round}: no other ever served"
        );
        // The arbiter puts back what was removed.
        let deadline = Instant::now() + Duration::from_secs(10);
        while ![&paths.lock, &paths.socket, &paths.http_socket]
            .iter()
            .all(|p| p.exists())
        {
            assert!(Instant::now() < deadline, "{round}: files not put back");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert_eq!(arbiters_that_served(&env), 1, "only the first ever served");
    assert_eq!(env.count("SELECT count(*) FROM t"), receipts as i64);
    // Every commit moved the seq by one: as many distinct seqs as commits.
    let end_seq = env.count("SELECT seq FROM _scribe_seq");
    assert_eq!((end_seq - start_seq) as usize, seqs.len(), "{seqs:?}");
}

#[test]
fn status_and_stop_find_an_arbiter_whose_socket_was_removed() {
    let env = Env::new();
    env.scribe_ok(&["start"]);
    let pid = env.arbiter_pid().unwrap();
    std::fs::remove_file(env.paths().socket).unwrap();
    let out = env.scribe_ok(&["status"]);
    assert!(out.contains(&pid.to_string()), "{out}");
    std::fs::remove_file(env.paths().socket).unwrap();
    std::fs::remove_file(env.paths().lock).unwrap();
    let out = env.scribe_ok(&["stop"]);
    assert!(out.contains("stopped"), "{out}");
    assert_eq!(env.arbiter_processes(), Vec::<u32>::new());
}

#[test]
fn a_database_moved_away_stops_its_arbiter_and_says_why() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    let moved = env.dir.path().join("moved.db");
    std::fs::rename(&env.db, &moved).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // (The lock is on the file, which is elsewhere now: look for the
    // process.)
    while !env.arbiter_processes().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the arbiter kept serving a moved file"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::read_to_string(env.paths().log).unwrap();
    assert!(log.contains("moved"), "{log}");
    // Nothing was written into the moved file after it moved.
    let out = env.scribe(&["exec", "INSERT INTO t(tag, i) VALUES ('x', 1)"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("stopped"), "{}", stderr(&out));
    // `status` says why, not only the log.
    let out = env.scribe(&["status"]);
    assert_eq!(out.status.code(), Some(10));
    assert!(stderr(&out).contains("was moved away"), "{}", stderr(&out));
    let c = rusqlite::Connection::open(&moved).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

/// A database deleted under its arbiter (a test's set-up removing the
/// file) is made again by the next caller, as SQLite makes a new file:
/// it was stopped as after a move, and its marker held auto-start off
/// for 30 s ("auto-start resumes in 30s"). Now the old arbiter stops at
/// the next caller's connection at the latest, and leaves no stopping
/// marker; and the old file's `-wal` and `-shm`, kept by a process still
/// reading it, are not taken for the new file's.
#[test]
fn a_database_deleted_under_the_arbiter_is_made_again_by_the_next_caller() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    let reader = snapshot_of_empty_t(&env);
    env.insert_tagged("old", 3);
    let first = env.arbiter_pid().expect("auto-started");
    std::fs::remove_file(&env.db).unwrap();
    // Told to retry, or (had the old arbiter gone already) written into a
    // new file.
    let lost = env
        .scribe(&["exec", "CREATE TABLE lost(x)"])
        .status
        .success();
    env.scribe_ok(&["exec", "--retry-for", "20s", "CREATE TABLE fresh(x)"]);
    assert_ne!(env.arbiter_pid(), Some(first), "a new arbiter");
    assert!(!env.paths().stop_marker.exists(), "no stopping marker");
    let c = rusqlite::Connection::open(&env.db).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let mut user_tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_scribe%' ESCAPE '\\'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    user_tables.sort();
    let expected: &[&str] = if lost { &["fresh", "lost"] } else { &["fresh"] };
    assert_eq!(user_tables, expected, "a new database");
    drop(reader);
    let log = std::fs::read_to_string(env.paths().log).unwrap();
    assert!(log.contains("database file was deleted"), "{log}");
}

#[test]
fn a_marker_far_in_the_future_expires_a_day_after_it_was_written() {
    let env = Env::new();
    let marker = env.paths().stop_marker;
    std::fs::write(&marker, "until=95617584000000\n").unwrap();
    let out = env.scribe(&["status"]);
    let said = stderr(&out);
    assert!(said.contains("resumes in"), "{said}");
    let secs: f64 = said
        .split("resumes in ")
        .nth(1)
        .and_then(|r| r.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(f64::MAX);
    assert!(secs <= 24.0 * 3600.0, "{said}");
    // Written over a day ago: it no longer holds anything back.
    let old = nix::sys::time::TimeSpec::new(1_000_000_000, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &marker,
        &old,
        &old,
        nix::sys::stat::UtimensatFlags::FollowSymlink,
    )
    .unwrap();
    env.scribe_ok(&["exec", "CREATE TABLE t(x)"]);
}

#[test]
fn start_and_stop_racing_end_with_one_arbiter_and_no_unexplained_failure() {
    let env = Env::new();
    for round in 0..20 {
        let spawn = |args: &[&str]| {
            let mut c = env.command(SCRIBE);
            c.args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        };
        let starts: Vec<_> = (0..4).map(|_| spawn(&["start"])).collect();
        let stops: Vec<_> = (0..3).map(|_| spawn(&["stop", "--grace", "0s"])).collect();
        for c in starts {
            let out = output_within(c, COMMAND_TIMEOUT, "scribe start");
            assert!(
                out.status.success(),
                "round {round}: start failed: {}{}\nlog:\n{}",
                stdout(&out),
                stderr(&out),
                std::fs::read_to_string(env.paths().log).unwrap_or_default()
            );
        }
        for c in stops {
            let out = output_within(c, COMMAND_TIMEOUT, "scribe stop");
            assert!(
                out.status.success(),
                "round {round}: stop: {}",
                stderr(&out)
            );
        }
        env.arbiters_settle(1, Duration::from_secs(20));
    }
    let mut c = env.command(SCRIBE);
    c.arg("stop");
    let _ = run(c, COMMAND_TIMEOUT);
}

#[test]
fn any_length_of_database_path_gets_an_arbiter_serving_both_sockets() {
    // A socket beside the database up to 107 bytes, a hashed name in /tmp
    // past that; each is first bound under a temporary name, which must
    // fit as well: paths of 81 to 95 bytes could not start an arbiter.
    for len in [80usize, 81, 88, 95, 96, 120] {
        let mut env = Env::new();
        let dir = std::fs::canonicalize(env.dir.path()).unwrap();
        let name = "d".repeat(len - dir.as_os_str().len() - 1 - 3) + ".db";
        env.db = dir.join(name);
        assert_eq!(env.db.as_os_str().len(), len);
        env.scribe_ok(&["exec", "CREATE TABLE t(x)"]);
        let (code, _, body) = crate::http::call(&env, "GET", "/v1/status", "");
        assert_eq!(code, 200, "{len}: {body}");
        let paths = env.paths();
        let status = env.scribe_ok(&["status"]);
        assert!(
            status.contains(&*paths.http_socket.to_string_lossy()),
            "{len}: {status}"
        );
        env.scribe_ok(&["stop"]);
        assert!(
            !paths.socket.exists() && !paths.http_socket.exists(),
            "{len}"
        );
    }
}
