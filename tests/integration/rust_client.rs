//! The Rust client library against a real arbiter: what its calls report
//! when the arbiter goes away, and when an outcome is unknown.

use std::time::{Duration, Instant};

use scribe_protocol::{Batch, Params, Statement, WriteError};

use crate::harness::{Env, LONG_LEASE, SCHEMA, SCRIBED};

fn options(call_timeout: Duration, retry_for: Duration) -> scribe_client::Options {
    scribe_client::Options {
        arbiter_bin: Some(SCRIBED.into()),
        call_timeout,
        retry_for,
        ..scribe_client::Options::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// An arbiter started with `args`, the schema made, and a client of it
/// with these deadlines (on a one-thread runtime).
fn connected(
    args: &[&str],
    call_timeout: Duration,
    retry_for: Duration,
) -> (Env, tokio::runtime::Runtime, scribe_client::Client) {
    let mut env = Env::new();
    env.start_arbiter(args);
    env.scribe_ok(&["exec", SCHEMA]);
    let rt = runtime();
    let client = rt
        .block_on(scribe_client::Client::connect(
            &env.paths(),
            &options(call_timeout, retry_for),
        ))
        .unwrap();
    (env, rt, client)
}

/// A write whose first try was queued and then timed out may commit later:
/// when its retries meet a full queue until `retry_for` passes, the write
/// ends as an unknown outcome naming its key. It ended as the last try's
/// `Overloaded` ("nothing was written"), and then committed.
#[test]
fn a_write_whose_first_try_may_have_committed_is_never_reported_unwritten() {
    let mut args = LONG_LEASE.to_vec();
    args.extend(["--queue-capacity", "1"]);
    let (env, rt, client) = connected(&args, Duration::from_millis(300), Duration::from_secs(3));
    let holder = env.hold_writer("held");
    let batch = Batch::one(Statement::new("INSERT INTO t(tag, i) VALUES ('w', 1)"));
    match rt.block_on(client.write(batch)) {
        Err(WriteError::Timeout { message }) => {
            assert!(
                message.contains("may or may not have committed"),
                "{message}"
            );
            assert!(message.contains("idempotency key"), "{message}");
        }
        other => panic!("an unknown outcome was reported as {other:?}"),
    }
    let out = holder.release();
    assert!(out.status.success(), "{out:?}");
    // The first try was queued behind the holder: it commits now, once.
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.count("SELECT count(*) FROM t WHERE tag = 'w'") == 0 {
        assert!(
            Instant::now() < deadline,
            "the queued write never committed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'w'"), 1);
}

/// `begin` and `status` do not retry, and they kept the connection the
/// arbiter had closed: after a restart they failed for ever ("connection
/// to the arbiter lost") until a write happened to replace it; and on a
/// one-thread runtime that had not run since the restart (its reader had
/// not seen the connection end) the first call after it still failed.
#[test]
fn begin_and_status_reconnect_after_a_restart() {
    let (env, rt, client) = connected(&[], Duration::from_secs(30), Duration::from_secs(30));
    let before = rt.block_on(client.status()).unwrap().pid;
    env.scribe_ok(&["restart"]);
    let after = rt
        .block_on(client.status())
        .expect("status on a new connection")
        .pid;
    assert_ne!(before, after, "a new arbiter answered");
    env.scribe_ok(&["restart"]);
    let tx = rt
        .block_on(client.begin())
        .expect("begin on a new connection");
    rt.block_on(tx.execute(
        "INSERT INTO t(tag, i) VALUES ('after restart', 1)",
        scribe_protocol::Params::None,
    ))
    .unwrap();
    rt.block_on(tx.commit()).unwrap();
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
}

/// A write of the same client inside its transaction function waited for
/// the writer the function's session held: the session lapsed, the write
/// committed outside it, and the function ran again (20 times in 30 s,
/// 20 rows outside). It is refused at once, async and blocking.
#[test]
fn a_write_inside_the_client_s_own_transaction_function_is_refused() {
    let (env, rt, client) = connected(&[], Duration::from_secs(30), Duration::from_secs(30));
    let runs = std::sync::atomic::AtomicU32::new(0);
    let out = rt.block_on(client.transaction(|tx| {
        let (client, runs) = (client.clone(), &runs);
        async move {
            runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tx.execute("INSERT INTO t(tag, i) VALUES ('in', 1)", Params::None)
                .await?;
            let inner = Batch::one(Statement::new("INSERT INTO t(tag, i) VALUES ('out', 1)"));
            client.write(inner).await?;
            Ok(())
        }
    }));
    match out {
        Err(WriteError::Refused { reason, .. }) => {
            assert!(reason.contains("own transaction function"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(runs.load(std::sync::atomic::Ordering::Relaxed), 1);
    // Other tasks' writes are not concerned.
    rt.block_on(client.write(Batch::one(Statement::new(
        "INSERT INTO t(tag, i) VALUES ('after', 1)",
    ))))
    .unwrap();
    let blocking =
        scribe_client::blocking::Client::connect(&env.paths(), client.options()).unwrap();
    let out = blocking.transaction(|tx| {
        tx.execute("INSERT INTO t(tag, i) VALUES ('in', 2)", Params::None)?;
        blocking.write(Batch::one(Statement::new(
            "INSERT INTO t(tag, i) VALUES ('out', 2)",
        )))?;
        Ok(())
    });
    assert!(matches!(out, Err(WriteError::Refused { .. })), "{out:?}");
    assert_eq!(env.count("SELECT count(*) FROM t"), 1, "only 'after'");
}

/// An error the function returns that its session did not give (here
/// another database's `Unavailable`) is returned, as the documentation
/// says: it ran the function again for all of `retry_for`.
#[test]
fn a_transaction_function_s_own_error_is_returned_at_once() {
    let (env, rt, client) = connected(&[], Duration::from_secs(30), Duration::from_secs(30));
    let runs = std::sync::atomic::AtomicU32::new(0);
    let out: Result<(), WriteError> = rt.block_on(client.transaction(|tx| {
        let runs = &runs;
        async move {
            runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tx.execute("INSERT INTO t(tag, i) VALUES ('in', 1)", Params::None)
                .await?;
            Err(WriteError::Unavailable {
                reason: "another database's arbiter".into(),
            })
        }
    }));
    assert!(
        matches!(out, Err(WriteError::Unavailable { .. })),
        "{out:?}"
    );
    assert_eq!(runs.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(env.count("SELECT count(*) FROM t"), 0);
}

/// A transaction dropped without its commit or rollback is rolled back
/// then: its session held the writer until its idle lease lapsed (300 s
/// here), every other writer waiting. Async (a handle let go, then the
/// runtime runs on) and blocking (a function that panicked).
#[test]
fn a_dropped_transaction_is_rolled_back_at_once() {
    let (env, rt, client) = connected(
        &LONG_LEASE,
        Duration::from_secs(30),
        Duration::from_secs(30),
    );
    let tx = rt.block_on(client.begin()).unwrap();
    rt.block_on(tx.execute("INSERT INTO t(tag, i) VALUES ('dropped', 1)", Params::None))
        .unwrap();
    drop(tx);
    // The program goes on: its runtime sends the rollback.
    rt.block_on(client.status()).unwrap();
    // Behind a held session this would wait past its 60 s deadline.
    env.scribe_ok(&[
        "exec",
        "--timeout",
        "60s",
        "INSERT INTO t(tag, i) VALUES ('next', 1)",
    ]);
    let blocking =
        scribe_client::blocking::Client::connect(&env.paths(), client.options()).unwrap();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        blocking.transaction(|tx| -> Result<(), WriteError> {
            tx.execute("INSERT INTO t(tag, i) VALUES ('panicked', 1)", Params::None)?;
            panic!("the function's own bug");
        })
    }));
    assert!(panicked.is_err());
    env.scribe_ok(&[
        "exec",
        "--timeout",
        "60s",
        "INSERT INTO t(tag, i) VALUES ('then', 1)",
    ]);
    assert_eq!(
        env.count("SELECT count(*) FROM t"),
        2,
        "'next' and 'then' only"
    );
}

/// A begin whose caller stopped waiting (a timeout around it, a dropped
/// future) is granted later: the session then held the writer until its
/// idle lease lapsed (300 s here), every other writer waiting. The
/// connection rolls back a session begun for nobody.
#[test]
fn a_session_begun_for_a_caller_that_stopped_waiting_is_rolled_back() {
    let (env, rt, client) = connected(
        &LONG_LEASE,
        Duration::from_secs(30),
        Duration::from_secs(30),
    );
    let holder = env.hold_writer("held");
    let begun = rt
        .block_on(async { tokio::time::timeout(Duration::from_millis(300), client.begin()).await });
    assert!(begun.is_err(), "the begin waits behind the holder");
    assert!(holder.release().status.success());
    let mut c = env.command(crate::harness::SCRIBE);
    c.args([
        "exec",
        "--timeout",
        "60s",
        "INSERT INTO t(tag, i) VALUES ('next', 1)",
    ]);
    c.stdout(std::process::Stdio::null());
    let mut writer = c.spawn().unwrap();
    // This client's runtime runs while the write waits: its connection
    // reads the orphan's begin and rolls it back.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = rt.block_on(async {
        loop {
            if let Some(status) = writer.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the write never ended");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert!(
        status.success(),
        "the write waited behind a session begun for nobody"
    );
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'next'"), 1);
}
