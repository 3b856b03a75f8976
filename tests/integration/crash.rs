//! Crashes and signals under load.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{stderr, stdout, wait_exit, Env, SCHEMA};

#[test]
fn kill_9_under_load_loses_nothing_acknowledged_and_the_next_write_restarts() {
    let mut env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    let loaders: Vec<_> = (0..4)
        .map(|w| {
            let tag = format!("k{w}");
            let (i, log) = env.loader(&tag, 300);
            (tag, i, log)
        })
        .collect();
    env.wait_loaded(&loaders.iter().map(|l| l.2.as_path()).collect::<Vec<_>>());
    let first = env.arbiter_pid().unwrap();
    env.kill9_arbiter();
    assert!(
        env.paths().socket.exists(),
        "the socket file is left behind"
    );
    assert!(env.paths().lock.exists(), "the lock file is left behind");
    // The kernel lets the lock go with the process and the stale socket
    // refuses connections, so nothing is waited out: the CLI's own
    // deadlines (5 s to become ready, 10 s a call) bound the restart, and
    // a wall-clock bound here would measure the machine.
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('after-kill', 1)"]);
    assert_ne!(env.arbiter_pid(), Some(first));
    for (tag, i, log) in loaders {
        let out = env.wait(i, Duration::from_secs(60));
        assert!(out.status.success(), "{}", stderr(&out));
        let acked = env.assert_acked_present(&tag, &log);
        assert!(acked > 0, "{tag}: {}", stdout(&out));
    }
    let ok: String = env
        .sqlite()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

#[test]
fn sigterm_under_load_drains_exits_zero_and_releases_everything() {
    let mut env = Env::new();
    let mut arbiter = env.foreground_arbiter();
    env.scribe_ok(&["exec", SCHEMA]);
    let loaders: Vec<_> = (0..4)
        .map(|w| {
            let tag = format!("s{w}");
            let (i, log) = env.loader(&tag, 300);
            (tag, i, log)
        })
        .collect();
    env.wait_loaded(&loaders.iter().map(|l| l.2.as_path()).collect::<Vec<_>>());
    kill(Pid::from_raw(arbiter.id() as i32), Signal::SIGTERM).unwrap();
    let status = wait_exit(&mut arbiter, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    assert!(!env.paths().socket.exists(), "socket removed");
    assert_eq!(env.arbiter_pid(), None, "lock released");
    for (tag, i, log) in loaders {
        let out = env.wait(i, Duration::from_secs(60));
        assert!(out.status.success(), "{}", stderr(&out));
        env.assert_acked_present(&tag, &log);
    }
    // SIGTERM is a stop: auto-start waits out the grace period.
    assert!(env.paths().stop_marker.exists());
    assert!(env.arbiter_processes().is_empty());
}
