//! An arbiter whose start fails (here a migration at open) records why
//! before it lets the lock go, and auto-starters hold back for a while,
//! saying why at once: each retrying client used to start one arbiter
//! after another that failed the same way (45 starts in 30 s from one
//! Python client, each applying the migrations again).

use crate::harness::{stderr, Env};

/// Migrations at open whose second fails, named in the database's conf.
fn failing_migrations(env: &Env) -> std::path::PathBuf {
    let d = env.dir.path().join("m");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("0001_t.sql"), "CREATE TABLE t(x);\n").unwrap();
    std::fs::write(d.join("0002_u.sql"), "INSERT INTO nope VALUES (1);\n").unwrap();
    let conf = env.dir.path().join("t.db.scribe.conf");
    std::fs::write(conf, format!("migrations = {}\n", d.display())).unwrap();
    d
}

/// How many arbiters began to apply the migrations, by their log.
fn starts(env: &Env) -> usize {
    let log = std::fs::read_to_string(env.paths().log).unwrap_or_default();
    log.matches("applying migrations at open").count()
}

#[test]
fn a_failed_start_holds_auto_start_back_with_its_reason_until_a_migration_changes() {
    let env = Env::new();
    let d = failing_migrations(&env);
    let write = || env.scribe(&["exec", "INSERT INTO t VALUES (1)"]);
    let first = write();
    assert_eq!(first.status.code(), Some(10), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("no such table: nope"),
        "{}",
        stderr(&first)
    );
    assert_eq!(starts(&env), 1);
    for _ in 0..3 {
        let again = write();
        let said = stderr(&again);
        assert_eq!(again.status.code(), Some(10), "{said}");
        assert!(said.contains("its arbiter failed to start"), "{said}");
        assert!(said.contains("no such table: nope"), "{said}");
        assert!(said.contains("start` tries again at once"), "{said}");
    }
    assert_eq!(starts(&env), 1, "no arbiter was started again");
    let status = env.scribe(&["status"]);
    assert_eq!(status.status.code(), Some(10));
    assert!(
        stderr(&status).contains("no such table: nope"),
        "{}",
        stderr(&status)
    );
    // Mended in place, the same size: the next write starts one at once.
    std::fs::write(d.join("0002_u.sql"), "CREATE TABLE nope(x);\n").unwrap();
    let mended = write();
    assert!(mended.status.success(), "{}", stderr(&mended));
    assert_eq!(starts(&env), 2);
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
    env.scribe_ok(&["stop"]);
}

#[test]
fn an_explicit_start_tries_again_at_once_and_says_why_it_failed() {
    let env = Env::new();
    failing_migrations(&env);
    let first = env.scribe(&["exec", "INSERT INTO t VALUES (1)"]);
    assert_eq!(first.status.code(), Some(10), "{}", stderr(&first));
    let start = env.scribe(&["start"]);
    let said = stderr(&start);
    assert_eq!(start.status.code(), Some(10), "{said}");
    assert!(said.contains("no such table: nope"), "{said}");
    assert_eq!(starts(&env), 2, "scribe start does not hold back");
}

/// Another process's lock, held past the busy timeout while the arbiter
/// makes its own tables, passes: it is not recorded, and once it is let
/// go the next write starts an arbiter at once (it was held back 10 s).
#[test]
fn a_start_that_met_another_process_s_lock_holds_nothing_back() {
    let env = Env::new();
    let direct = rusqlite::Connection::open(&env.db).unwrap();
    direct
        .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x); BEGIN IMMEDIATE;")
        .unwrap();
    let blocked = env.scribe(&["exec", "INSERT INTO t VALUES (1)"]);
    assert_eq!(blocked.status.code(), Some(10), "{}", stderr(&blocked));
    assert!(stderr(&blocked).contains("locked"), "{}", stderr(&blocked));
    let record = std::fs::read_to_string(env.paths().lock).unwrap_or_default();
    assert!(!record.contains("failed="), "{record}");
    direct.execute_batch("COMMIT").unwrap();
    let out = env.scribe(&["exec", "INSERT INTO t VALUES (2)"]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.scribe_ok(&["stop"]);
}

/// A start given settings of its own (`scribed --migrations DIR` by hand)
/// that fails does not speak for an auto-started arbiter, which takes the
/// conf's: it is not recorded.
#[test]
fn a_failed_start_with_settings_of_its_own_holds_nothing_back() {
    let env = Env::new();
    let bad = env.dir.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(bad.join("0001_x.sql"), "INSERT INTO nope VALUES (1);\n").unwrap();
    let out = crate::harness::run(
        {
            let mut c = env.command(crate::harness::SCRIBED);
            c.arg("--db").arg(&env.db).arg("--migrations").arg(&bad);
            c
        },
        crate::harness::COMMAND_TIMEOUT,
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no such table: nope"),
        "{}",
        stderr(&out)
    );
    let written = env.scribe(&["exec", "CREATE TABLE t(x)"]);
    assert!(written.status.success(), "{}", stderr(&written));
    env.scribe_ok(&["stop"]);
}

/// A file still in rollback mode, another program in a write transaction
/// on it: the arbiter's switch to WAL waits for its lock as the busy
/// timeout waits (SQLite calls no busy handler for that lock, and every
/// caller failed at once with "database is locked").
#[test]
fn a_start_beside_a_writer_of_a_rollback_mode_file_waits_for_its_lock() {
    let mut env = Env::new();
    let direct = rusqlite::Connection::open(&env.db).unwrap();
    direct
        .execute_batch("CREATE TABLE t(x); BEGIN IMMEDIATE; INSERT INTO t VALUES (0);")
        .unwrap();
    let mut c = env.command(crate::harness::SCRIBE);
    c.args(["exec", "INSERT INTO t VALUES (1)"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let writer = env.spawn(c);
    let paths = env.paths();
    let deadline = std::time::Instant::now() + crate::harness::COMMAND_TIMEOUT;
    while scribe_protocol::starting::starting(&paths).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "no arbiter began to start"
        );
        assert!(
            !env.exited(writer),
            "the write ended before the lock was let go"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Held on a moment after the arbiter began (it fails in milliseconds
    // without the wait).
    std::thread::sleep(std::time::Duration::from_millis(300));
    direct.execute_batch("COMMIT").unwrap();
    let out = env.wait(writer, crate::harness::COMMAND_TIMEOUT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.count("SELECT count(*) FROM t"), 2);
    env.scribe_ok(&["stop"]);
}

/// An extension that is not there: the start fails naming the path given,
/// not SQLite's last try with `.so` added (helper 96: `vec0.so.so:
/// cannot open shared object file`).
#[test]
fn a_missing_extension_is_named_as_given() {
    let env = Env::new();
    let missing = env.dir.path().join("vec0.so");
    let conf = env.dir.path().join("t.db.scribe.conf");
    std::fs::write(conf, format!("load-extension = {}\n", missing.display())).unwrap();
    let out = env.scribe(&["exec", "SELECT 1"]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(10), "{said}");
    assert!(
        said.contains(&format!("{} does not exist", missing.display())),
        "{said}"
    );
    assert!(!said.contains(".so.so"), "{said}");
}

/// A relative path in the settings file is taken from the file's
/// directory: an arbiter auto-started by a caller in another directory
/// looked for the migrations there, and failed (helper 97).
#[test]
fn a_relative_path_in_the_settings_is_beside_the_database() {
    let env = Env::new();
    let d = env.dir.path().join("m");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("0001_t.sql"), "CREATE TABLE t(x);\n").unwrap();
    std::fs::write(env.dir.path().join("t.db.scribe.conf"), "migrations = m\n").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let mut c = env.command(crate::harness::SCRIBE);
    c.args(["exec", "INSERT INTO t VALUES (1)"])
        .current_dir(elsewhere.path());
    let out = crate::harness::run(c, crate::harness::COMMAND_TIMEOUT);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
}
