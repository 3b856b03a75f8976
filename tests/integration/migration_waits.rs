//! `scribe migrate` waits as long as its migrations may take, but not for
//! an arbiter that stopped answering: it waited out the whole migration
//! budget (five minutes) whatever `--timeout` said.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{output_within, Env, COMMAND_TIMEOUT, SCRIBE};

/// A directory whose second migration runs until the test stops the
/// arbiter; `scribe migrate` on it with `--timeout 2s`, returned once
/// migration 1 is recorded (2 runs then): the arbiter's pid and the child.
fn migrating(env: &mut Env) -> (u32, std::process::Child) {
    let pid = env.start_arbiter(&[]);
    let d = env.dir.path().join("m");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("0001_init.sql"), "CREATE TABLE a(x);").unwrap();
    // Long enough to be running when the arbiter is frozen.
    std::fs::write(
        d.join("0002_slow.sql"),
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000000) \
         INSERT INTO a SELECT i FROM c;",
    )
    .unwrap();
    let mut c = env.command(SCRIBE);
    c.args(["--timeout", "2s", "migrate", d.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    // Migration 1 is recorded: 2 runs now.
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    while env.count("SELECT count(*) FROM sqlite_master WHERE name = '_scribe_migrations'") == 0
        || env.count("SELECT count(*) FROM _scribe_migrations") == 0
    {
        assert!(Instant::now() < deadline, "migration 1 never committed");
        std::thread::sleep(Duration::from_millis(20));
    }
    (pid, child)
}

#[test]
fn migrate_gives_up_on_a_frozen_arbiter_within_two_timeouts() {
    let mut env = Env::new();
    let (pid, child) = migrating(&mut env);
    kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    let out = output_within(child, COMMAND_TIMEOUT, "scribe migrate");
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(11), "{said}");
    assert!(said.contains("stopped answering"), "{said}");
}

/// The arbiter killed while a migration runs: the outcome is unknown, and
/// the message says what is safe, asking again, not the batches' "retry
/// with the same idempotency key": a migration has none (helper 93).
#[test]
fn a_migration_cut_off_says_to_ask_again() {
    let mut env = Env::new();
    let (pid, child) = migrating(&mut env);
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let out = output_within(child, COMMAND_TIMEOUT, "scribe migrate");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(11), "{said}");
    assert!(said.contains("ask again"), "{said}");
    assert!(!said.contains("idempotency key"), "{said}");
    assert_eq!(env.count("SELECT count(*) FROM _scribe_migrations"), 1);
}
