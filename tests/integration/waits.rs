//! A request's own limit on its wait for the writer (`wait_ms`): behind
//! another connection's write session it is answered `overloaded`
//! (SQLITE_BUSY's words for drivers) once its limit passes, never runs,
//! and leaves the session, and the writes without a limit, as they were.
//! The session is held for as long as the test needs (long leases), so
//! only the request's own limit can end its wait.

use std::time::{Duration, Instant};

use scribe_protocol::{Batch, Statement, WriteError};

use crate::harness::{client, Env, LONG_LEASE, SCHEMA, SCRIBE};
use crate::http::call;

const LIMIT_MS: u64 = 200;

#[test]
fn a_write_behind_a_session_gives_up_at_its_own_limit_and_nothing_else_changes() {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    let holder = env.hold_writer("held");

    // A write with no limit waits behind the session, as it always did.
    let mut patient = env.command(SCRIBE);
    patient.args(["exec", "INSERT INTO t(tag, i) VALUES ('patient', 1)"]);
    let patient = env.spawn(patient);
    env.wait_status(|s| s["queue_depth"].as_u64() == Some(1));

    // Over HTTP: a write and a begin, each with a limit.
    for (path, body) in [
        (
            "/v1/write",
            format!(
                r#"{{"statements":[{{"sql":"INSERT INTO t(tag, i) VALUES ('http', 1)"}}],"wait_ms":{LIMIT_MS}}}"#
            ),
        ),
        ("/v1/begin", format!(r#"{{"wait_ms":{LIMIT_MS}}}"#)),
    ] {
        let started = Instant::now();
        let (status, _, body) = call(&env, "POST", path, &body);
        let waited = started.elapsed();
        assert_eq!(status, 429, "{path}: {body}");
        let e: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(e["category"], "overloaded", "{path}: {body}");
        assert_eq!(e["sqlite_code"], 5, "SQLITE_BUSY: {body}");
        assert_eq!(e["sqlite_message"], "database is locked", "{body}");
        assert_eq!(e["waited_ms"], LIMIT_MS, "{body}");
        let message = e["message"].as_str().unwrap();
        assert!(message.contains("write transaction"), "{message}");
        assert!(message.contains("nothing of it was written"), "{message}");
        assert!(
            waited >= Duration::from_millis(LIMIT_MS),
            "{path} answered after {waited:?}, before its limit"
        );
    }

    // Over the Rust client (bincode): the error is `Busy`, not retried
    // (the caller's limit passed), the batch not run.
    let (rt, c) = client(&env.paths());
    let batch = Batch {
        wait_ms: Some(LIMIT_MS),
        ..Batch::one(Statement::new("INSERT INTO t(tag, i) VALUES ('rust', 1)"))
    };
    match rt.block_on(c.write(batch)) {
        Err(WriteError::Busy { waited_ms, behind }) => {
            assert_eq!(waited_ms, LIMIT_MS);
            assert!(behind.contains("session"), "{behind}");
        }
        other => panic!("expected Busy, got {other:?}"),
    }

    // The session was not disturbed: it commits; the patient write then
    // runs; the refused ones never did.
    assert!(holder.release().status.success());
    assert!(env.wait(patient, Duration::from_secs(60)).status.success());
    assert_eq!(
        env.count("SELECT count(*) FROM t WHERE tag = 'held'"),
        2,
        "the session's two rows"
    );
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'patient'"), 1);
    assert_eq!(
        env.count("SELECT count(*) FROM t WHERE tag IN ('http', 'rust')"),
        0
    );

    // With the writer free, a write with a limit runs as any other.
    let batch = Batch {
        wait_ms: Some(LIMIT_MS),
        ..Batch::one(Statement::new("INSERT INTO t(tag, i) VALUES ('rust', 2)"))
    };
    assert!(rt.block_on(c.write(batch)).is_ok());
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'rust'"), 1);
}

#[test]
fn the_cli_and_the_shell_give_up_at_their_own_limit_writing_nothing() {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    let holder = env.hold_writer("held");

    // `scribe exec --wait`: exit 12 (overloaded), saying why, not written.
    let out = env.scribe(&[
        "exec",
        "--wait",
        "200ms",
        "INSERT INTO t(tag, i) VALUES ('cli', 1)",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(12), "{err}");
    assert!(err.contains("database is busy"), "{err}");
    assert!(err.contains("nothing of it was written"), "{err}");

    // The shell's `.timeout MS`, as sqlite3's: a write and a BEGIN each
    // give up; the script goes on after each error.
    let (code, output) = crate::shell::shell(
        &env,
        ".timeout 200\n\
         INSERT INTO t(tag, i) VALUES ('shell', 1);\n\
         BEGIN;\n\
         INSERT INTO t(tag, i) VALUES ('shell', 2);\n\
         SELECT count(*) AS n FROM t WHERE tag = 'shell';\n",
    );
    assert_eq!(code, Some(12), "{output}");
    assert_eq!(
        output.matches("database is busy").count(),
        3,
        "the write, the BEGIN, and the INSERT run alone after it: {output}"
    );
    assert!(output.contains("| 0 |"), "the count ran: {output}");

    assert!(holder.release().status.success());
    assert_eq!(
        env.count("SELECT count(*) FROM t WHERE tag IN ('cli', 'shell')"),
        0
    );
    // With the writer free, the same command writes.
    env.scribe_ok(&[
        "exec",
        "--wait",
        "200ms",
        "INSERT INTO t(tag, i) VALUES ('cli', 1)",
    ]);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'cli'"), 1);
}
