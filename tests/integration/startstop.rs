//! Starting and stopping without races: parallel starts, the auto-start
//! race, a stop that stays stopped, and a lock file naming a stranger.

use std::time::{Duration, Instant};

use crate::harness::{stderr, stdout, Env, SCHEMA, SCRIBE, WORKER};

/// Categories a loader met, from its `categories=` report.
fn categories(out: &str) -> Vec<String> {
    out.split("categories=")
        .nth(1)
        .map(|c| {
            c.trim()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn eight_parallel_starts_make_exactly_one_arbiter() {
    let mut env = Env::new();
    let starts: Vec<usize> = (0..8)
        .map(|_| {
            let mut c = env.command(SCRIBE);
            c.arg("start");
            env.spawn(c)
        })
        .collect();
    let outs: Vec<String> = starts
        .into_iter()
        .map(|i| {
            let out = env.wait(i, Duration::from_secs(30));
            assert!(out.status.success(), "{}", stderr(&out));
            stdout(&out)
        })
        .collect();
    let started = outs
        .iter()
        .filter(|o| o.starts_with("started scribed"))
        .count();
    let already = outs
        .iter()
        .filter(|o| o.starts_with("already running"))
        .count();
    assert_eq!((started, already), (1, 7), "{outs:#?}");
    // Losing arbiters exit at once; give them a moment to be gone.
    let left = env.arbiters_settle(1, Duration::from_secs(20));
    assert_eq!(left, vec![env.arbiter_pid().unwrap()]);
    let mut sockets: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".sock"))
        .collect();
    sockets.sort();
    // One RPC socket and one HTTP socket, no temporary leftovers.
    assert_eq!(sockets, vec!["t.db.scribe.http.sock", "t.db.scribe.sock"]);
}

#[test]
fn eight_writers_racing_to_auto_start_share_one_arbiter() {
    let mut env = Env::new();
    env.sqlite().execute(SCHEMA, []).unwrap();
    assert_eq!(env.arbiter_pid(), None);
    let writers: Vec<usize> = (0..8)
        .map(|w| {
            let mut c = env.command(WORKER);
            c.args(["write", &format!("w{w}"), "50"]);
            env.spawn(c)
        })
        .collect();
    for w in writers {
        let out = env.wait(w, Duration::from_secs(60));
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    }
    assert_eq!(env.count("SELECT count(*) FROM t"), 400);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(env.arbiter_processes().len(), 1);
}

#[test]
fn stop_under_load_drains_and_stays_stopped_for_the_grace_period() {
    let mut env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    let loaders: Vec<(String, usize, std::path::PathBuf)> = (0..4)
        .map(|w| {
            let tag = format!("l{w}");
            let (i, log) = env.loader(&tag, 200);
            (tag, i, log)
        })
        .collect();
    env.wait_loaded(&loaders.iter().map(|l| l.2.as_path()).collect::<Vec<_>>());
    // A grace period long enough that the loaders' last tries fall in it
    // however slow the machine: past it, a retry may rightly start one.
    let stop = env.scribe(&["stop", "--grace", "15s"]);
    assert!(stop.status.success(), "{}", stderr(&stop));
    let said = stdout(&stop);
    assert!(said.contains("queued write(s)"), "{said}");
    let stopped_at = Instant::now();
    assert_eq!(env.arbiter_pid(), None);

    // A write in the grace period does not respawn the arbiter, and says why.
    let out = env.scribe(&["exec", "INSERT INTO t(tag, i) VALUES ('grace', 1)"]);
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("auto-start resumes in"),
        "{}",
        stderr(&out)
    );
    assert!(env.arbiter_processes().is_empty());

    // The loaders saw only retryable errors, and nothing acknowledged is
    // lost. A write sent as the arbiter closed its connections got no
    // answer: its outcome is unknown, and it ends `timeout` even when the
    // retries then meet the stopped arbiter (see retry::still_unknown).
    let mut acked = 0;
    for (tag, i, log) in loaders {
        let out = env.wait(i, Duration::from_secs(60));
        assert!(out.status.success(), "{}", stderr(&out));
        for c in categories(&stdout(&out)) {
            assert!(
                c == "shutting_down" || c == "unavailable" || c == "timeout",
                "loader {tag} saw {c}: {}",
                stdout(&out)
            );
        }
        acked += env.assert_acked_present(&tag, &log);
    }
    assert!(acked > 0);
    assert!(
        stopped_at.elapsed() < Duration::from_secs(15),
        "loaders too slow for the test"
    );
    assert_eq!(env.arbiter_pid(), None, "nothing respawned the arbiter");

    // After the grace period, auto-start works again.
    let wait = Duration::from_millis(15_100).saturating_sub(stopped_at.elapsed());
    std::thread::sleep(wait);
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('after', 1)"]);
    assert!(env.arbiter_pid().is_some());
}

#[test]
fn stop_hold_keeps_auto_start_off_until_start() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    env.scribe_ok(&["stop", "--hold", "--grace", "0s"]);
    std::thread::sleep(Duration::from_millis(100));
    let out = env.scribe(&["exec", "INSERT INTO t(tag, i) VALUES ('held', 1)"]);
    assert_eq!(out.status.code(), Some(10));
    assert!(stderr(&out).contains("--hold"), "{}", stderr(&out));
    let status = env.scribe(&["status"]);
    assert_eq!(status.status.code(), Some(10));
    assert!(stderr(&status).contains("auto-start is off until `scribe start`"));
    // Other languages' clients auto-start with `start --auto`: the hold
    // stays in force (a plain `start` would end it).
    let auto = env.scribe(&["start", "--auto"]);
    assert_eq!(auto.status.code(), Some(10), "{}", stderr(&auto));
    assert!(stderr(&auto).contains("--hold"), "{}", stderr(&auto));
    assert!(env.paths().stop_marker.exists());
    assert_eq!(env.scribe(&["status"]).status.code(), Some(10));
    env.scribe_ok(&["start"]);
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('held', 1)"]);
    env.scribe_ok(&["stop", "--grace", "0s"]);
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('held', 2)"]);
}

#[test]
fn a_lock_file_naming_a_live_stranger_does_not_block_start() {
    let env = Env::new();
    let paths = env.paths();
    // PID reuse: the file names a live process (this test) that holds no lock.
    std::fs::write(
        &paths.lock,
        format!(
            "pid={}\nstarted=1\nsocket={}\n",
            std::process::id(),
            paths.socket.display()
        ),
    )
    .unwrap();
    let out = env.scribe_ok(&["start"]);
    assert!(out.starts_with("started scribed"), "{out}");
    let pid = env.arbiter_pid().unwrap();
    assert_ne!(pid, std::process::id());
}

/// The database's lock, held by this test as an arbiter holds it.
fn hold_the_lock(paths: &scribe_protocol::Paths) -> scribe_protocol::lockfile::InstanceLock {
    scribe_protocol::lockfile::InstanceLock::try_acquire(paths)
        .unwrap()
        .expect("free")
}

#[test]
fn stop_signals_no_process_that_does_not_hold_the_database_open() {
    let env = Env::new();
    let paths = env.paths();
    // The lock is held (by this test) and nobody answers on the socket;
    // the record names a process that has nothing to do with the database
    // (a reused pid).
    let _held = hold_the_lock(&paths);
    let mut stranger = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    std::fs::write(
        &paths.lock,
        format!(
            "pid={}
started=1
",
            stranger.id()
        ),
    )
    .unwrap();
    let out = env.scribe(&["stop", "--timeout", "2s"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not signalled"), "{}", stderr(&out));
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "the stranger was signalled"
    );
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

#[test]
fn an_arbiter_that_holds_the_database_but_does_not_accept_is_not_called_absent() {
    let env = Env::new();
    let paths = env.paths();
    // The lock held (by this test, as an arbiter holds it while it
    // applies migrations at open), no socket bound yet.
    let _held = hold_the_lock(&paths);
    let out = env.scribe(&["--no-autostart", "exec", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("holds") && stderr(&out).contains("does not accept connections"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("no arbiter is running"));
}

/// With `--json`, start and stop print one JSON document each.
#[test]
fn start_and_stop_speak_json_when_asked() {
    let env = Env::new();
    let parse = |args: &[&str]| -> serde_json::Value {
        serde_json::from_str(&env.scribe_ok(args)).expect("one JSON document")
    };
    let started = parse(&["--json", "start"]);
    assert_eq!(started["started"], true, "{started}");
    let again = parse(&["--json", "start"]);
    assert_eq!(again["started"], false, "{again}");
    assert_eq!(again["pid"], started["pid"]);
    let stopped = parse(&["--json", "stop"]);
    assert_eq!(stopped["stopped"], true, "{stopped}");
    assert_eq!(stopped["pid"], started["pid"]);
    let none = parse(&["--json", "stop"]);
    assert_eq!(
        (none["stopped"].clone(), none["running"].clone()),
        (false.into(), false.into())
    );
}

/// `stop` on an arbiter stopped by SIGSTOP says so within a second or two
/// of its call timeout, instead of waiting out the 30 s a stop may take
/// and calling it "stopping".
#[test]
fn stop_names_a_frozen_arbiter_instead_of_waiting_for_it() {
    use nix::sys::signal::{kill, Signal};
    let mut env = Env::new();
    let pid = env.start_arbiter(&[]);
    let arbiter = nix::unistd::Pid::from_raw(pid as i32);
    kill(arbiter, Signal::SIGSTOP).unwrap();
    let out = env.scribe(&["--timeout", "2s", "stop"]);
    kill(arbiter, Signal::SIGCONT).unwrap();
    assert_eq!(out.status.code(), Some(11), "{}", stderr(&out));
    assert!(stderr(&out).contains("kill -CONT"), "{}", stderr(&out));
    env.scribe_ok(&["stop"]);
}

#[test]
fn a_stop_answers_all_it_read_then_says_so_before_it_closes() {
    use scribe_protocol::frame::{self, Request};
    use scribe_protocol::{Batch, Statement, WriteError};
    use std::io::Write;
    let mut env = Env::new();
    env.start_arbiter(&[]);
    env.scribe_ok(&["exec", "CREATE TABLE t(x)"]);
    let mut raw = scribe_tests::raw::Raw::greeted(&env.paths().socket);
    let write = |v: i64| {
        Request::Write(Batch::new(vec![Statement::new(format!(
            "INSERT INTO t VALUES ({v})"
        ))]))
    };
    assert!(raw.call(&write(1)).is_ok());
    // All of a second write's frame but its last byte: it is never read
    // whole, so never run.
    let mut second = Vec::new();
    frame::encode(99, &write(2), &mut second).unwrap();
    raw.stream.write_all(&second[..second.len() - 1]).unwrap();
    env.scribe_ok(&["stop"]);
    match raw.recv() {
        Some((0, Err(WriteError::ShuttingDown))) => {}
        other => panic!("the farewell: {other:?}"),
    }
    assert!(raw.recv().is_none(), "then the connection ends");
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
}

/// A stop whose drain waits for an open write session (up to its lease)
/// past the CLI's `--timeout` exited 11 with a write's wording ("a write
/// may or may not have committed"), and `restart` then started nothing.
#[test]
fn a_stop_that_drains_past_the_timeout_waits_for_the_arbiter_to_go() {
    let mut env = Env::new();
    let pid = env.start_arbiter(&[]);
    env.scribe_ok(&["exec", SCHEMA]);
    let holder = env.hold_writer("held");
    let out = env.scribe(&["--timeout", "200ms", "restart"]);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!("stopped scribed (pid {pid})")),
        "{said}"
    );
    assert!(!said.contains("may or may not"), "{said}");
    let now = env.arbiter_pid().expect("restarted");
    assert_ne!(now, pid);
    // The session lapsed with the stop: nothing of it was written.
    let _ = holder.release();
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'held'"), 0);
}
