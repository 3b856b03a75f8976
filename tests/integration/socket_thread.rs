//! The socket thread serves every connection, and small groups commit on
//! it while the writer thread is idle. A batch that runs long must not
//! take it: past a short slice the group is rolled back there and the
//! writer thread runs it again, so `status`, new connections and other
//! answers carry on, and the batch still commits exactly once.

use std::time::{Duration, Instant};

use scribe_client::{Client, Options};
use scribe_protocol::{Batch, Statement, Value};

use crate::harness::{Env, SCHEMA};

const FOREVER: &str = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
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
    let rt = rt();
    // The retrying client: every write carries an idempotency key.
    let c = rt
        .block_on(Client::connect(&env.paths(), &Options::default()))
        .unwrap();
    // Two million steps of a recursive query: far over the slice on any
    // machine, far under the budget.
    let slow = "INSERT INTO t(tag, i) SELECT 'slow', count(*) FROM \
                (WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 2000000) \
                SELECT n FROM r)";
    let (slow, quick) = rt.block_on(async {
        let slow = c.write(Batch::one(Statement::new(slow)));
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
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("outlasted the socket thread's slice"),
        "the group never ran on the socket thread first: {text}"
    );
    // The keys the rolled-back attempt recorded went with it: the writer
    // thread's run found none of them (no replays), and the table holds
    // each key once (debug builds also compare the key index with the
    // table at every transaction's end).
    let status = rt.block_on(c.status()).unwrap();
    assert_eq!((status.writes, status.replayed), (22, 0), "{status:?}");
    assert_eq!(env.count("SELECT count(*) FROM _scribe_requests"), 21);
}
