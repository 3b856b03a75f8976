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

/// An arbiter started with `flags`, and the test table.
fn with_schema(flags: &[&str]) -> Env {
    let mut env = Env::new();
    env.start_arbiter(flags);
    env.scribe_ok(&["exec", SCHEMA]);
    env
}

#[test]
fn a_write_behind_a_session_gives_up_at_its_own_limit_and_nothing_else_changes() {
    let mut env = with_schema(&LONG_LEASE);
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
    let env = with_schema(&LONG_LEASE);
    let holder = env.hold_writer("held");

    // `scribe exec --wait`: exit 12 (overloaded), saying why, not written.
    let (code, err) = exec_waiting(&env, "200ms", "INSERT INTO t(tag, i) VALUES ('cli', 1)");
    assert_eq!(code, Some(12), "{err}");
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
    // A limit past the call's own deadline could only end "unknown": flags
    // that contradict each other, a usage error.
    let (code, err) = exec_waiting(&env, "20s", "INSERT INTO t(tag, i) VALUES ('cli', 9)");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("must be shorter than --timeout"), "{err}");
    // With the writer free, the same command writes.
    let (code, err) = exec_waiting(&env, "200ms", "INSERT INTO t(tag, i) VALUES ('cli', 1)");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'cli'"), 1);
}

/// `scribe exec --wait WAIT SQL`: its exit code and what it said on stderr.
fn exec_waiting(env: &Env, wait: &str, sql: &str) -> (Option<i32>, String) {
    let out = env.scribe(&["exec", "--wait", wait, sql]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_limit_queued_behind_one_session_holds_when_the_next_session_takes_the_writer() {
    let env = with_schema(&LONG_LEASE);
    let first = env.hold_writer("first");
    // Queued behind it: a second session's begin, then a write whose
    // limit outlasts the first session.
    let mut second = env.queue_holder("second");
    env.wait_status(|s| s["queue_depth"].as_u64() == Some(1));
    let paths = env.paths();
    let limited = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // One try, and a deadline far past the limit: only the arbiter's
        // refusal can end the call while the second session holds on.
        let options = scribe_client::Options {
            call_timeout: Duration::from_secs(600),
            retry_for: Duration::ZERO,
            ..scribe_client::Options::default()
        };
        let c = rt
            .block_on(scribe_client::Client::connect(&paths, &options))
            .expect("connect");
        let batch = Batch {
            wait_ms: Some(3_000),
            ..Batch::one(Statement::new(
                "INSERT INTO t(tag, i) VALUES ('limited', 1)",
            ))
        };
        rt.block_on(c.write(batch))
    });
    env.wait_status(|s| s["queue_depth"].as_u64() == Some(2));
    // The first commits; the second session takes the writer (handed over
    // where the first ended) and holds it until this test lets it go.
    assert!(first.release().status.success());
    second.holding();
    // The write's limit still counts: it is refused while the second
    // session holds the writer, not when that session ends.
    let answer = limited.join().expect("the writing thread");
    assert!(
        matches!(
            answer,
            Err(WriteError::Busy {
                waited_ms: 3_000,
                ..
            })
        ),
        "{answer:?}"
    );
    assert!(second.release().status.success());
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'limited'"), 0);
    assert_eq!(
        env.count("SELECT count(*) FROM t WHERE tag IN ('first', 'second')"),
        4
    );
}

#[test]
fn a_limit_of_zero_refuses_nothing_when_nothing_holds_the_writer() {
    let env = with_schema(&[]);
    // A batch too large for the socket thread goes to the writer thread,
    // which was idle: it waited behind nothing, whatever its wakeup took.
    let script: String = (0..100)
        .map(|i| format!("INSERT INTO t(tag, i) VALUES ('big', {i});\n"))
        .collect();
    let file = env.dir.path().join("big.sql");
    std::fs::write(&file, script).unwrap();
    env.scribe_ok(&["exec", "--wait", "0ms", "--file", file.to_str().unwrap()]);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'big'"), 100);
    // A statement long enough to outlast the socket thread's slice (on
    // any machine this slow or slower) has started there: it is run again
    // on the writer thread, not refused.
    env.scribe_ok(&[
        "exec",
        "--wait",
        "0ms",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) \
         INSERT INTO t(tag, i) SELECT 'slow', count(*) FROM c",
    ]);
    assert_eq!(env.count("SELECT i FROM t WHERE tag = 'slow'"), 2_000_000);
}
