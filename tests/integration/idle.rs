//! An idle arbiter sleeps: its checkpointer copies the WAL after the
//! writes stop, then waits for the next commit instead of looking on a
//! clock.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{Env, SCHEMA};

/// The checkpointer's name as the kernel keeps it (15 bytes).
const CHECKPOINTER: &str = "scribe-checkpoi";

#[test]
fn an_idle_arbiter_checkpoints_then_sleeps_until_the_next_commit() {
    let mut env = Env::new();
    let log = env.dir.path().join("arbiter.log");
    let pid = env.start_arbiter_logged(&["--synchronous", "normal"], &log);
    env.scribe_ok(&["exec", SCHEMA]);
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('a', 1)"]);
    // Once the writes stop, everything in the WAL is copied...
    let first = wait_for_complete_checkpoints(&log, 1);
    // ...and then the checkpointer sleeps: over a second of nothing, it
    // is not woken (it used to look every 5 ms: about 200 times).
    let before = switches(pid, CHECKPOINTER);
    std::thread::sleep(Duration::from_secs(1));
    let woken = switches(pid, CHECKPOINTER) - before;
    assert!(
        woken <= 1,
        "the idle checkpointer was woken {woken} times in a second"
    );
    // A commit wakes it, and its frames are copied too.
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('a', 2)"]);
    wait_for_complete_checkpoints(&log, first + 1);
    assert_eq!(env.count("SELECT count(*) FROM t"), 2);
}

/// Waits until the log shows `n` checkpoints that copied the whole WAL
/// (`log=N copied=N`); returns how many it shows.
fn wait_for_complete_checkpoints(log: &Path, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let complete = text.lines().filter(|l| is_complete_checkpoint(l)).count();
        if complete >= n {
            return complete;
        }
        assert!(
            Instant::now() < deadline,
            "{complete} complete checkpoints in the log, waiting for {n}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `... checkpoint log=12 copied=12` (a checkpoint's debug line).
fn is_complete_checkpoint(line: &str) -> bool {
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse::<i64>().ok())
    };
    line.contains(" checkpoint ")
        && matches!((field("log="), field("copied=")), (Some(a), Some(b)) if a > 0 && a == b)
}

/// Context switches of the thread of `pid` named `name`: each is a
/// wake-up.
fn switches(pid: u32, name: &str) -> u64 {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("the arbiter's threads") {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).unwrap();
        return status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .map(|l| l.split_whitespace().last().unwrap().parse::<u64>().unwrap())
            .sum();
    }
    panic!("no thread named {name} in process {pid}");
}
