//! What people see: `scribe status` and one CLI message per error category.

use std::process::Output;
use std::time::Duration;

use crate::harness::{run, stderr, stdout, Env, LONG_LEASE, SCHEMA, SCRIBE, WORKER};

/// Exit code and both streams, with run-specific details masked.
fn shown(out: &Output) -> String {
    format!(
        "exit code: {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out).trim_end(),
        stderr(out).trim_end()
    )
}

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({
            filters => vec![
                (r"/tmp/sc[A-Za-z0-9]+", "[DIR]"),
                (r"pid \d+", "pid [PID]"),
                (r"retry after \d+ ms", "retry after [N] ms"),
            ],
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!($name, $value);
        });
    };
}

#[test]
fn status_for_people() {
    let mut env = Env::new();
    env.start_arbiter(&["--synchronous", "normal"]);
    env.scribe_ok(&["exec", SCHEMA]);
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('a', 1)"]);
    let _ = env.scribe(&["exec", "INSERT INTO t(tag, i) VALUES ('a', 1)"]);
    let out = env.scribe_ok(&["status"]);
    // Mask what differs from run to run, then the column padding it moves.
    let masked: String = out
        .lines()
        .map(|l| mask_status_line(&l.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect::<Vec<_>>()
        .join("\n");
    snapshot!("status", masked);
}

fn mask_status_line(line: &str) -> String {
    for key in ["pid", "uptime", "commit time", "wal", "state"] {
        if let Some(rest) = line.strip_prefix(key) {
            if rest.starts_with(' ') {
                return format!("{key} [masked]");
            }
        }
    }
    line.to_owned()
}

#[test]
fn unavailable() {
    let env = Env::new();
    let out = env.scribe(&["--no-autostart", "exec", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(10));
    snapshot!("error_unavailable", shown(&out));
}

#[test]
fn sql() {
    let env = Env::new();
    let out = env.scribe(&["exec", "INSERT INTO nope VALUES (1)"]);
    assert_eq!(out.status.code(), Some(15));
    snapshot!("error_sql", shown(&out));
    let json = env.scribe(&["--json", "exec", "INSERT INTO nope VALUES (1)"]);
    snapshot!("error_sql_json", shown(&json));
}

#[test]
fn conflict() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    let out = env.scribe(&[
        "exec",
        "UPDATE t SET i = 1 WHERE tag = 'nobody'",
        "--expect-rows",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(14));
    snapshot!("error_conflict", shown(&out));
}

#[test]
fn refused() {
    let env = Env::new();
    let key = "k".repeat(200);
    let out = env.scribe(&["exec", "--key", &key, "SELECT 1"]);
    assert_eq!(out.status.code(), Some(16));
    snapshot!("error_refused", shown(&out));
}

#[test]
fn protocol() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    let mut c = env.command(WORKER);
    c.args(["hello", "999"]);
    let out = run(c, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(17));
    snapshot!("error_protocol", shown(&out));
}

#[test]
fn timeout() {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    // The write waits behind a held session past its deadline.
    let busy = env.hold_writer("busy");
    let out = env.scribe(&[
        "--timeout",
        "2s",
        "exec",
        "--key",
        "late-1",
        "INSERT INTO t(tag, i) VALUES ('late', 1)",
    ]);
    assert_eq!(out.status.code(), Some(11), "{}", shown(&out));
    snapshot!("error_timeout", shown(&out));
    // Without --key the message names the key the command made, and
    // asking again with it writes the batch once.
    let insert = "INSERT INTO t(tag, i) VALUES ('late', 2)";
    let out = env.scribe(&["--timeout", "2s", "exec", insert]);
    assert_eq!(out.status.code(), Some(11), "{}", shown(&out));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let key = said
        .split("`--key ")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no key named: {said}"))
        .to_owned();
    assert!(busy.release().status.success());
    env.scribe_ok(&["exec", "--key", &key, insert]);
    env.scribe_ok(&["exec", "--key", &key, insert]);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE i = 2"), 1);
}

#[test]
fn overloaded() {
    let mut env = Env::new();
    env.start_arbiter(&[&["--queue-capacity", "1"][..], &LONG_LEASE].concat());
    env.scribe_ok(&["exec", SCHEMA]);
    // A held session occupies the writer, one more write fills the queue.
    let busy = env.hold_writer("busy");
    let mut queued = env.command(SCRIBE);
    queued.args(["exec", "INSERT INTO t(tag, i) VALUES ('q', 1)"]);
    let queued = env.spawn(queued);
    env.wait_status(|s| s["queue_depth"].as_u64() == Some(1));
    let out = env.scribe(&["exec", "INSERT INTO t(tag, i) VALUES ('o', 1)"]);
    assert_eq!(out.status.code(), Some(12), "{}", shown(&out));
    snapshot!("error_overloaded", shown(&out));
    // The others were not hurt.
    assert!(busy.release().status.success());
    assert!(env.wait(queued, Duration::from_secs(30)).status.success());
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'q'"), 1);
}

#[test]
fn shutting_down() {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    let busy = env.hold_writer("busy");
    // Its answer waits for the held session: a deadline past the test's.
    let mut stop = env.command(SCRIBE);
    stop.args(["--timeout", "120s", "stop"]);
    let stop = env.spawn(stop);
    env.wait_status(|s| s["stopping"].as_bool() == Some(true));
    let out = env.scribe(&["--no-autostart", "exec", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(13), "{}", shown(&out));
    snapshot!("error_shutting_down", shown(&out));
    // The session open before the stop was still committed and answered.
    let held = busy.release();
    assert!(held.status.success(), "{}", shown(&held));
    let stopped = env.wait(stop, Duration::from_secs(30));
    assert!(stopped.status.success(), "{}", shown(&stopped));
    assert!(stdout(&stopped).contains("drained"), "{}", shown(&stopped));
}

#[test]
fn lifecycle_messages() {
    let env = Env::new();
    let mut shown_all = String::new();
    let mut step = |label: &str, args: &[&str], code: i32| {
        let out = env.scribe(args);
        assert_eq!(out.status.code(), Some(code), "{label}: {}", shown(&out));
        shown_all.push_str(&format!("$ scribe {}\n{}\n\n", args.join(" "), shown(&out)));
    };
    step("status, none", &["status"], 10);
    step("start", &["start"], 0);
    step("start again", &["start"], 0);
    step("stop", &["stop"], 0);
    step("status, stopped", &["status"], 10);
    step("stop, none", &["stop"], 0);
    step("stop --hold, none", &["stop", "--hold"], 0);
    step("status, held", &["status"], 10);
    step("start, held", &["start"], 0);
    step("restart", &["restart"], 0);
    step("stop --grace", &["stop", "--grace", "0s"], 0);
    insta::with_settings!({
        filters => vec![
            (r"/tmp/sc[A-Za-z0-9]+", "[DIR]"),
            (r"pid \d+", "pid [PID]"),
            (r"in \d+ ms", "in [N] ms"),
            (r"resumes in [\d.]+s", "resumes in [T]s"),
        ],
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!("lifecycle_messages", shown_all);
    });
}
