//! What an auto-started arbiter inherits from the caller that started it
//! must not decide its fate: a shell's `ulimit -f` killed it with
//! `SIGXFSZ` at the first write past it, without a log line (helper 88).

use std::os::unix::process::CommandExt;

use nix::sys::resource::{setrlimit, Resource, RLIM_INFINITY};

use crate::harness::{run, stderr, Env, COMMAND_TIMEOUT, SCRIBE};

/// `scribe ARGS` under a file-size limit of `soft` and `hard` bytes; the
/// arbiter it starts inherits the limit.
fn scribe_limited(env: &Env, soft: u64, hard: u64, args: &[&str]) -> std::process::Output {
    let mut c = env.command(SCRIBE);
    c.args(args);
    // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        c.pre_exec(move || {
            setrlimit(Resource::RLIMIT_FSIZE, soft, hard).map_err(std::io::Error::from)
        });
    }
    run(c, COMMAND_TIMEOUT)
}

const BLOB: &str = "INSERT INTO b(x) VALUES (randomblob(30000))";

#[test]
fn a_callers_soft_file_size_limit_is_lifted_and_a_hard_one_fails_writes_not_the_arbiter() {
    let env = Env::new();
    // A soft limit of 200 kB, as `ulimit -S -f 200` sets: lifted.
    let out = scribe_limited(&env, 200_000, RLIM_INFINITY, &["exec", "CREATE TABLE b(x)"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = env.arbiter_pid().expect("an arbiter");
    for _ in 0..12 {
        env.scribe_ok(&["exec", BLOB]);
    }
    assert_eq!(env.count("SELECT count(*) FROM b"), 12);
    assert_eq!(env.arbiter_pid(), Some(pid), "the arbiter died");
    env.scribe_ok(&["stop"]);

    // A hard limit (here 600 kB, the WAL's reach): a write past it fails
    // as SQLite's error, and the arbiter serves on.
    let out = scribe_limited(&env, 600_000, 600_000, &["start"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pid = env.arbiter_pid().expect("an arbiter");
    let (mut refused, mut acked) = (None, 0);
    for _ in 0..40 {
        let out = env.scribe(&["exec", BLOB]);
        if out.status.success() {
            acked += 1;
        } else {
            refused = Some((out.status.code(), stderr(&out)));
            break;
        }
    }
    let (code, said) = refused.expect("no write met the limit");
    // SQLite's words for EFBIG: "disk I/O error", nothing written.
    assert_eq!(code, Some(15), "{said}");
    assert!(said.contains("nothing was written"), "{said}");
    assert_eq!(env.arbiter_pid(), Some(pid), "the arbiter died");
    env.scribe_ok(&["status"]);
    // Every acknowledged write is there, and the refused one is not.
    env.scribe_ok(&["stop"]);
    assert_eq!(env.count("SELECT count(*) FROM b"), 12 + acked);
}
