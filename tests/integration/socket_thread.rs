//! The socket thread serves every connection, and small groups commit on
//! it while the writer thread is idle. A batch that runs long must not
//! take it: past a short slice the group is rolled back there and the
//! writer thread runs it again, so `status`, new connections and other
//! answers carry on, and the batch still commits exactly once.

use std::time::{Duration, Instant};

use scribe_client::Error;
use scribe_protocol::{Batch, Params, Statement, Value};

use crate::harness::{client, Env, LONG_LEASE, SCHEMA};

const FOREVER: &str = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)";

/// The arbiter's log says `what`: the work ran on the socket thread
/// first, and was moved.
fn assert_logged(log: &std::path::Path, what: &str) {
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains(what), "never logged {what:?}: {text}");
}

/// `scribe status --json` while the writer is busy: it must answer, and
/// say a write is running. Before the slice it waited for the batch to
/// end (here the budget, 30 s, past the poll's 20 s).
fn status_while_writing(env: &Env) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = env.scribe(&["--json", "status"]);
        assert!(out.status.success(), "{out:?}");
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if s["writing_for_ms"].as_u64().unwrap_or(0) > 0 {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "status never saw the long batch running: {s}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_batch_that_runs_long_leaves_status_and_new_connections_answering() {
    for sync in ["normal", "full"] {
        let mut env = Env::new();
        env.start_arbiter(&["--batch-budget", "30s", "--synchronous", sync]);
        env.scribe_ok(&["exec", SCHEMA]);
        let mut runaway = env.command(crate::harness::SCRIBE);
        runaway.args([
            "exec",
            &format!("INSERT INTO t(tag, i) {FOREVER} SELECT 'runaway', n FROM r"),
        ]);
        env.spawn(runaway);
        let s = status_while_writing(&env);
        assert_eq!(s["writes"], 1, "{sync}: only the schema so far: {s}");
        // A reader is not held up either (it reads the file).
        assert_eq!(env.count("SELECT count(*) FROM t"), 0, "{sync}");
    }
}

#[test]
fn a_slow_group_moved_off_the_socket_thread_commits_once_in_order() {
    let mut env = Env::new();
    let log = env.dir.path().join("scribed.log");
    env.start_arbiter_logged(&[], &log);
    env.scribe_ok(&["exec", SCHEMA]);
    // The retrying client: every write carries an idempotency key.
    let (rt, c) = client(&env.paths());
    let (slow, quick) = rt.block_on(async {
        let slow = c.write(Batch::one(Statement::new(SLOW_INSERT)));
        let quick = futures::future::join_all((0..20).map(|i| {
            c.write(Batch::one(
                Statement::new("INSERT INTO t(tag, i) VALUES ('quick', ?1)")
                    .params(vec![Value::Integer(i)]),
            ))
        }));
        tokio::join!(slow, quick)
    });
    let slow = slow.unwrap();
    for q in quick {
        let q = q.unwrap();
        assert!(q.seq >= slow.seq, "a later write committed first");
    }
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'slow'"), 1);
    assert_eq!(env.count("SELECT i FROM t WHERE tag = 'slow'"), 2_000_000);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'quick'"), 20);
    assert_logged(&log, "outlasted the socket thread's slice");
    // The keys the rolled-back attempt recorded went with it: the writer
    // thread's run found none of them (no replays), and the table holds
    // each key once (debug builds also compare the key index with the
    // table at every transaction's end).
    let status = rt.block_on(c.status()).unwrap();
    assert_eq!((status.writes, status.replayed), (22, 0), "{status:?}");
    // 21 writes here and `scribe exec`'s (it keys every batch).
    assert_eq!(env.count("SELECT sum(n) FROM _scribe_requests"), 22);
}

/// Two million steps of a recursive query, counted into one row: far
/// over the slice on any machine, far under the budget and the leases.
const SLOW_INSERT: &str = "INSERT INTO t(tag, i) SELECT 'slow', count(*) FROM \
     (WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 2000000) \
     SELECT n FROM r)";

fn text(v: &Value) -> String {
    format!("{v:?}")
}

#[test]
fn a_sessions_statement_that_runs_long_leaves_status_answering() {
    let mut env = Env::new();
    let mut args = LONG_LEASE.to_vec();
    args.extend(["--synchronous", "normal"]);
    env.start_arbiter(&args);
    env.scribe_ok(&["exec", SCHEMA]);
    let paths = env.paths();
    // The begin travels with the statement (a lazy transaction), so the
    // session is never seen without its statement running.
    std::thread::spawn(move || {
        let (rt, c) = client(&paths);
        let _ = rt.block_on(c.transaction(|tx| async move {
            tx.execute(
                &format!("INSERT INTO t(tag, i) {FOREVER} SELECT 'runaway', n FROM r"),
                Params::None,
            )
            .await
        }));
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = env.scribe(&["--json", "status"]);
        assert!(out.status.success(), "{out:?}");
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if !s["session"].is_null() {
            break;
        }
        // Before the slice, status waited for the lease (300 s) here.
        assert!(
            Instant::now() < deadline,
            "status never saw the session: {s}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(env.count("SELECT count(*) FROM t"), 0);
}

#[test]
fn a_session_cut_short_on_the_socket_thread_is_put_back_and_goes_on() {
    let mut env = Env::new();
    let log = env.dir.path().join("scribed.log");
    env.start_arbiter_logged(&LONG_LEASE, &log);
    env.scribe_ok(&["exec", SCHEMA]);
    let (rt, c) = client(&env.paths());
    let receipt = rt.block_on(async {
        let tx = c.begin().await?;
        tx.execute("INSERT INTO t(tag, i) VALUES ('s', 1)", Params::None)
            .await?;
        let seen = tx
            .execute("SELECT tag, i FROM t ORDER BY id", Params::None)
            .await?;
        assert_eq!(seen.rows.len(), 1);
        // SQLite rolls the transaction back when this is interrupted: the
        // writer thread must begin again and run the two above first.
        let slow = tx.execute(SLOW_INSERT, Params::None).await?;
        assert_eq!(slow.rows_affected, 1);
        let after = tx
            .execute("SELECT count(*) FROM t WHERE tag = 's'", Params::None)
            .await?;
        assert_eq!(text(&after.rows[0][0]), "Integer(1)");
        tx.execute("INSERT INTO t(tag, i) VALUES ('s', 2)", Params::None)
            .await?;
        tx.commit().await
    });
    receipt.unwrap();
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 's'"), 2);
    assert_eq!(env.count("SELECT i FROM t WHERE tag = 'slow'"), 2_000_000);
    assert_logged(
        &log,
        "a session's statement outlasted the socket thread's slice",
    );
}

#[test]
fn a_session_whose_results_change_when_run_again_ends_rolled_back() {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    let (rt, c) = client(&env.paths());
    let outcome = rt.block_on(async {
        let tx = c.begin().await?;
        // Told to the caller; another number when run again.
        tx.execute("SELECT random()", Params::None).await?;
        tx.execute(SLOW_INSERT, Params::None).await
    });
    match outcome {
        Err(Error::Expired { reason }) => {
            assert!(reason.contains("random()"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(env.count("SELECT count(*) FROM t"), 0);
    // The writer is free again.
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('after', 1)"]);
}

/// A read cut short leaves the transaction as it was: the session goes on
/// without running its statements again, so one whose result changes
/// from run to run (an id from randomblob(), the clock) does not end it.
/// It always did, and `run_transaction` retried it until it gave up.
#[test]
fn a_read_cut_short_after_results_that_change_keeps_its_session() {
    let mut env = Env::new();
    let log = env.dir.path().join("scribed.log");
    env.start_arbiter_logged(&LONG_LEASE, &log);
    env.scribe_ok(&["exec", SCHEMA]);
    let (rt, c) = client(&env.paths());
    let slow_read = "SELECT count(*) FROM \
         (WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 2000000) \
         SELECT n FROM r)";
    let receipt = rt.block_on(async {
        let tx = c.begin().await?;
        tx.execute(
            "INSERT INTO t(tag, i) VALUES (hex(randomblob(8)), 1) RETURNING tag",
            Params::None,
        )
        .await?;
        let counted = tx.execute(slow_read, Params::None).await?;
        assert_eq!(text(&counted.rows[0][0]), "Integer(2000000)");
        tx.commit().await
    });
    receipt.unwrap();
    assert_eq!(env.count("SELECT count(*) FROM t WHERE i = 1"), 1);
    // The read did outlast the slice: the writer thread took it.
    assert_logged(
        &log,
        "a session's statement outlasted the socket thread's slice",
    );
}

/// A statement that failed earlier in the session is run again, when a
/// write cut short is put back, under the index its error named the first
/// time: its error then tells the same, and the session goes on.
#[test]
fn a_session_with_a_failed_statement_is_put_back_and_goes_on() {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    let (rt, c) = client(&env.paths());
    let receipt = rt.block_on(async {
        let tx = c.begin().await?;
        tx.execute("INSERT INTO t(tag, i) VALUES ('a', 1)", Params::None)
            .await?;
        let again = tx
            .execute("INSERT INTO t(tag, i) VALUES ('a', 1)", Params::None)
            .await;
        assert!(matches!(again, Err(Error::Sql { .. })), "{again:?}");
        tx.execute(SLOW_INSERT, Params::None).await?;
        tx.commit().await
    });
    receipt.unwrap();
    assert_eq!(env.count("SELECT i FROM t WHERE tag = 'slow'"), 2_000_000);
}

/// A session whose connection closes while its statement runs is rolled
/// back at once: the statement stops with it, rather than holding the
/// writer until the session's lease ends (300 s here). (Over HTTP the
/// close is only seen when the answer is written.)
#[test]
fn a_statement_stops_when_its_session_s_connection_closes() {
    use std::io::{Read, Write};
    let mut env = Env::new();
    let log = env.dir.path().join("scribed.log");
    env.start_arbiter_logged(&LONG_LEASE, &log);
    env.scribe_ok(&["exec", SCHEMA]);
    let mut s = std::os::unix::net::UnixStream::connect(env.paths().socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(b"scribe\x01j").unwrap();
    let mut call = |id: u32, body: &str, answer: bool| -> String {
        let mut frame = (body.len() as u32).to_le_bytes().to_vec();
        frame.extend(id.to_le_bytes());
        frame.extend(body.as_bytes());
        s.write_all(&frame).unwrap();
        if !answer {
            return String::new();
        }
        let mut head = [0u8; 8];
        s.read_exact(&mut head).unwrap();
        let mut body = vec![0u8; u32::from_le_bytes(head[..4].try_into().unwrap()) as usize];
        s.read_exact(&mut body).unwrap();
        String::from_utf8(body).unwrap()
    };
    let hello = format!(
        r#"{{"hello":{{"version":{}}}}}"#,
        scribe_protocol::PROTOCOL_VERSION
    );
    assert!(call(1, &hello, true).contains("ok"));
    let begun = call(2, r#"{"begin":{}}"#, true);
    assert!(begun.contains(r#""session":1"#), "{begun}");
    call(
        3,
        &format!(
            r#"{{"exec":{{"session":1,"statement":{{"sql":"{FOREVER} SELECT count(*) FROM r"}}}}}}"#
        ),
        false,
    );
    // Past the slice, on the writer thread: it runs until stopped.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("outlasted the socket thread's slice")
    {
        assert!(Instant::now() < deadline, "the statement never ran long");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(s);
    // The session ends at once (not at its 300 s lease).
    env.wait_status(|s| s["session"].is_null());
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('after', 1)"]);
}
