//! An idle arbiter sleeps: its checkpointer copies the WAL after the
//! writes stop, then waits for the next commit instead of looking on a
//! clock; its socket thread polls for a moment after calls, and no longer.

use std::path::Path;
use std::time::{Duration, Instant};

use scribe_protocol::{Batch, Statement};

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
    wait_for_complete_checkpoints(&log, 1);
    // ...and then the checkpointer sleeps: over a second of nothing, it
    // is not woken (it used to look every 5 ms: about 200 times). On a
    // slow machine the first complete checkpoint may have been the
    // schema's, with the insert's still to come: a second in which the
    // checkpointer logged a checkpoint is measured again.
    let first = loop {
        let logged = checkpoint_lines(&log);
        let before = switches(pid, CHECKPOINTER);
        std::thread::sleep(Duration::from_secs(1));
        let woken = switches(pid, CHECKPOINTER) - before;
        if woken > 1 && checkpoint_lines(&log) > logged {
            continue;
        }
        assert!(
            woken <= 1,
            "the idle checkpointer was woken {woken} times in a second"
        );
        break complete_checkpoints(&log);
    };
    // A commit wakes it, and its frames are copied too.
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('a', 2)"]);
    wait_for_complete_checkpoints(&log, first + 1);
    assert_eq!(env.count("SELECT count(*) FROM t"), 2);
}

#[test]
fn the_socket_thread_polls_while_calls_come_and_stops_when_they_stop() {
    let mut env = Env::new();
    let pid = env.start_arbiter(&["--synchronous", "normal", "--spin", "200us"]);
    env.scribe_ok(&["exec", SCHEMA]);
    let (rt, client) = crate::harness::client(&env.paths());
    let main = format!("/proc/{pid}/task/{pid}/stat");
    for i in 0..500 {
        let insert = Statement::new(format!("INSERT INTO t(tag, i) VALUES ('one', {i})"));
        rt.block_on(client.write(Batch::one(insert))).unwrap();
    }
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'one'"), 500);
    // The calls have stopped: within a window the thread sleeps. Polling
    // on would cost a whole CPU: about 100 ticks in a second.
    let before = cpu_ticks(&main);
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(&main) - before;
    assert!(
        used <= 5,
        "the idle socket thread used {used} ticks of CPU in a second"
    );
}

/// User plus system time of a thread, in clock ticks (`/proc/.../stat`).
fn cpu_ticks(stat: &str) -> u64 {
    let text = std::fs::read_to_string(stat).expect("the thread's stat");
    // Fields after the command (which may hold spaces) start after ')'.
    let fields: Vec<&str> = text[text.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Waits until the log shows `n` checkpoints that copied the whole WAL
/// (`log=N copied=N`).
fn wait_for_complete_checkpoints(log: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while complete_checkpoints(log) < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} complete checkpoints in the log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checkpoints in the log that copied the whole WAL.
fn complete_checkpoints(log: &Path) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().filter(|l| is_complete_checkpoint(l)).count()
}

/// Checkpoints in the log, complete or not.
fn checkpoint_lines(log: &Path) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().filter(|l| l.contains(" checkpoint ")).count()
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
