//! An arbiter that holds the lock but serves nobody yet (opening the
//! database, applying migrations at open) is waited for as the writer
//! would be, and said to be starting. Callers waited a fixed 3–5 s, then
//! failed with "holds the lock but does not answer" (exit 10), or with
//! "no arbiter answered within 5s: … already running".

use std::fs::File;
use std::os::fd::AsFd;
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;

use crate::harness::{stderr, Env, COMMAND_TIMEOUT, SCRIBE, SCRIBED};

/// Holds the lock a previous arbiter of the path holds on a byte of the
/// WAL while it drains, so that a new one waits, deterministically, in
/// its "starting" phase until this is dropped.
fn hold_wal(env: &Env) -> File {
    let wal = env.paths().wal();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(wal)
        .expect("open the WAL");
    // SAFETY: flock is a plain C struct; all-zero is a valid value.
    let mut range: libc::flock = unsafe { std::mem::zeroed() };
    range.l_type = libc::F_WRLCK as libc::c_short;
    range.l_whence = libc::SEEK_SET as libc::c_short;
    range.l_start = scribe_protocol::lockfile::LOCK_OFFSET;
    range.l_len = 1;
    fcntl(file.as_fd(), FcntlArg::F_OFD_SETLK(&range)).expect("lock the WAL's byte");
    file
}

/// Waits until the lock record says an arbiter is starting.
fn wait_starting(env: &Env) {
    wait_phase(env, "");
}

/// Waits until the lock record says an arbiter is starting, in a phase
/// that begins with `phase`.
fn wait_phase(env: &Env, phase: &str) {
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    while !scribe_protocol::starting::starting(&env.paths())
        .is_some_and(|s| s.phase.starts_with(phase))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no arbiter recorded that it is starting ({phase:?})"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A migrations directory whose one migration makes `t`, then counts
/// to `n` (seconds of work for tens of millions).
fn slow_migrations(env: &Env, n: u64) -> std::path::PathBuf {
    let d = env.dir.path().join("m");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("0001_slow.sql"),
        format!(
            "CREATE TABLE t(x); CREATE TABLE burn AS WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL \
             SELECT i + 1 FROM c WHERE i < {n}) SELECT count(*) AS n FROM c;"
        ),
    )
    .unwrap();
    d
}

/// `scribed --db DB ARGS`, its output dropped, handed to the test (to
/// signal it).
fn spawn_arbiter(env: &Env, args: &[&std::ffi::OsStr]) -> std::process::Child {
    let mut c = env.command(SCRIBED);
    c.arg("--db")
        .arg(&env.db)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c.spawn().expect("spawn scribed")
}

#[test]
fn callers_wait_for_a_starting_arbiter_up_to_their_deadline_and_say_why() {
    let mut env = Env::new();
    env.sqlite()
        .execute_batch("CREATE TABLE t(x);")
        .expect("schema");
    let held = hold_wal(&env);
    let mut arbiter = env.command(SCRIBED);
    arbiter.arg("--db").arg(&env.db);
    env.spawn(arbiter);
    wait_starting(&env);
    let out = env.scribe(&[
        "--timeout",
        "1s",
        "--ready-timeout",
        "1s",
        "exec",
        "INSERT INTO t VALUES (1)",
    ]);
    let said = stderr(&out);
    // Busy, as a write that waited for the writer past its deadline.
    assert_eq!(out.status.code(), Some(12), "{said}");
    assert!(said.contains("database is busy"), "{said}");
    assert!(
        said.contains(
            "is still starting, waiting for the arbiter of the file that was at this path"
        ),
        "{said}"
    );
    assert!(said.contains("nothing of it was written"), "{said}");
    // `exec --wait` is the wait for the writer, a starting one's too (it
    // waited out --timeout).
    let out = env.scribe(&[
        "--json",
        "--timeout",
        "120s",
        "exec",
        "--wait",
        "500ms",
        "INSERT INTO t VALUES (1)",
    ]);
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    let said: serde_json::Value =
        serde_json::from_str(crate::harness::stdout(&out).trim()).expect("a JSON error");
    let waited = said["error"]["waited_ms"].as_u64().expect("waited_ms");
    assert!((500..60_000).contains(&waited), "{said}");
    let out = env.scribe(&["status"]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(10), "{said}");
    assert!(
        said.contains("is starting: waiting for the arbiter"),
        "{said}"
    );
    assert!(said.contains("it serves once that is done"), "{said}");
    assert!(!said.contains("does not answer"), "{said}");
    let out = env.scribe(&["--ready-timeout", "1s", "start"]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(10), "{said}");
    assert!(said.contains("--ready-timeout allows more"), "{said}");
    // A caller whose deadline allows it gets its write in once the
    // arbiter serves.
    let mut c = env.command(SCRIBE);
    c.args(["--timeout", "60s", "exec", "INSERT INTO t VALUES (2)"]);
    let waiting = env.spawn(c);
    drop(held);
    let out = env.wait(waiting, COMMAND_TIMEOUT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE x = 2"), 1);
}

#[test]
fn a_write_that_auto_starts_an_arbiter_with_migrations_at_open_waits_for_them() {
    let env = Env::new();
    // Several seconds here, past the default readiness deadline (5 s) on
    // this project's usual machine; any length passes the test.
    let d = slow_migrations(&env, 80_000_000);
    let conf = env.dir.path().join("t.db.scribe.conf");
    std::fs::write(&conf, format!("migrations = {}\n", d.display())).unwrap();
    let out = env.scribe(&["--timeout", "60s", "exec", "INSERT INTO t VALUES (1)"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.count("SELECT n FROM burn"), 80_000_000);
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
}

/// Sends SIGTERM to `child` and waits (bounded) for its exit status.
fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    use nix::sys::signal::{kill, Signal};
    kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    )
    .expect("SIGTERM");
    crate::harness::wait_exit(child, COMMAND_TIMEOUT)
}

#[test]
fn sigterm_while_starting_is_a_stop_that_stays_stopped() {
    let env = Env::new();
    env.sqlite()
        .execute_batch("CREATE TABLE t(x);")
        .expect("schema");
    let held = hold_wal(&env);
    let mut arbiter = spawn_arbiter(&env, &[]);
    wait_starting(&env);
    // Before, the signal's default action: killed, no marker, and the
    // next write started another arbiter at once.
    let status = terminate(&mut arbiter);
    drop(held);
    assert!(status.success(), "{status:?}");
    assert!(scribe_protocol::stopmarker::read_active(&env.paths().stop_marker).is_some());
    let out = env.scribe(&["exec", "INSERT INTO t VALUES (1)"]);
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the arbiter was stopped"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.count("SELECT count(*) FROM t"), 0);
}

#[test]
fn sigterm_during_a_migration_at_open_rolls_it_back_and_stops() {
    let env = Env::new();
    // Far longer than the moment between its record and the signal.
    let d = slow_migrations(&env, 2_000_000_000);
    let mut arbiter = spawn_arbiter(&env, &["--migrations".as_ref(), d.as_os_str()]);
    wait_phase(&env, "applying the migrations");
    let status = terminate(&mut arbiter);
    assert!(status.success(), "{status:?}");
    assert!(scribe_protocol::stopmarker::read_active(&env.paths().stop_marker).is_some());
    assert_eq!(
        env.count("SELECT count(*) FROM sqlite_master WHERE name IN ('t', 'burn')"),
        0
    );
}

#[test]
fn a_query_of_a_new_database_reads_it_while_its_arbiter_is_busy_starting() {
    let env = Env::new();
    // The arbiter this query starts waits (deterministically) in a phase
    // that holds the writer: the query reads the file it made, as it
    // would read any served file then (it failed, "does not exist").
    let held = hold_wal(&env);
    let out = env.scribe(&["--timeout", "1s", "query", "SELECT 41 + 1 AS answer"]);
    drop(held);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        crate::harness::stdout(&out).contains("42"),
        "{}",
        crate::harness::stdout(&out)
    );
    env.wait_ready(COMMAND_TIMEOUT);
    env.scribe_ok(&["stop"]);
}

#[test]
fn a_start_whose_arbiter_is_still_starting_says_so_as_when_it_finds_one() {
    let env = Env::new();
    let held = hold_wal(&env);
    // This start launches the arbiter, which waits; before, it exited 12
    // with a write's words ("nothing of it was written").
    let out = env.scribe(&["--ready-timeout", "1s", "start"]);
    drop(held);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(10), "{said}");
    assert!(
        said.contains("is starting: waiting for the arbiter"),
        "{said}"
    );
    assert!(said.contains("--ready-timeout allows more"), "{said}");
    env.wait_ready(COMMAND_TIMEOUT);
    env.scribe_ok(&["stop"]);
}

#[test]
fn a_stop_that_names_its_grace_keeps_it_over_a_starting_arbiters_own() {
    let env = Env::new();
    let held = hold_wal(&env);
    let mut arbiter = spawn_arbiter(&env, &[]);
    wait_starting(&env);
    // What `scribe stop --grace 0` leaves before it signals one that is
    // starting; the arbiter wrote its own 30 s over it, and a write made
    // in that moment was refused for 30 s.
    scribe_protocol::stopmarker::write(
        &env.paths(),
        scribe_protocol::stopmarker::Marker::for_next(Duration::ZERO),
    )
    .expect("marker");
    let status = terminate(&mut arbiter);
    drop(held);
    assert!(status.success(), "{status:?}");
    assert!(scribe_protocol::stopmarker::read_active(&env.paths().stop_marker).is_none());
}
