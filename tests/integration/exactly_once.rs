//! Idempotency keys, their retention, and read-your-writes.

use std::time::{Duration, Instant};

use scribe_client::{Connection, Error, Options};
use scribe_protocol::{Batch, Statement};
use scribe_reader::Reader;

use crate::harness::{Env, SCHEMA, SCRIBED};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Options for in-process clients: auto-start the test's arbiter binary.
fn options() -> Options {
    Options {
        arbiter_bin: Some(SCRIBED.into()),
        ..Options::default()
    }
}

fn connect(env: &Env, rt: &tokio::runtime::Runtime) -> Connection {
    rt.block_on(Connection::connect(&env.paths(), &options()))
        .unwrap()
}

fn keyed(key: &str, tag: &str, i: i64) -> Batch {
    Batch {
        statements: vec![
            Statement::new("INSERT INTO t(tag, i) VALUES (?1, ?2) RETURNING id")
                .params(vec![tag.into(), i.into()]),
        ],
        key: Some(key.into()),
        wait_ms: None,
        foreign_keys: None,
    }
}

#[test]
fn a_repeated_key_replays_the_receipt_and_writes_nothing() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    env.scribe_ok(&["exec", SCHEMA]);
    let rt = rt();
    let c = connect(&env, &rt);
    let first = rt.block_on(c.write(keyed("k1", "x", 1))).unwrap();
    let again = rt.block_on(c.write(keyed("k1", "x", 1))).unwrap();
    assert!(!first.replayed);
    assert!(again.replayed);
    assert_eq!(again.seq, first.seq);
    assert_eq!(again.results, first.results);
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
    // The same key with another batch is refused, and writes nothing.
    match rt.block_on(c.write(keyed("k1", "x", 2))) {
        Err(Error::Conflict { message, .. }) => {
            assert!(message.contains("different batch"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
    // Two batches with one key in the same group: one write, one replay.
    let (a, b) = rt.block_on(async {
        tokio::join!(c.write(keyed("k2", "y", 1)), c.write(keyed("k2", "y", 1)))
    });
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.replayed, b.replayed);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'y'"), 1);
}

#[test]
fn keys_survive_an_arbiter_restart_and_a_crash() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    let rt = rt();
    let first = rt
        .block_on(connect(&env, &rt).write(keyed("kept", "r", 1)))
        .unwrap();
    env.scribe_ok(&["stop", "--grace", "0s"]);
    let after_stop = rt
        .block_on(connect(&env, &rt).write(keyed("kept", "r", 1)))
        .unwrap();
    assert!(after_stop.replayed);
    assert_eq!(after_stop.seq, first.seq);
    env.kill9_arbiter();
    let after_kill = rt
        .block_on(connect(&env, &rt).write(keyed("kept", "r", 1)))
        .unwrap();
    assert!(after_kill.replayed);
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
}

#[test]
fn old_keys_are_pruned_by_age_and_by_count() {
    let mut env = Env::new();
    env.start_arbiter(&[
        "--key-retention",
        "1s",
        "--max-keys",
        "3",
        "--prune-every",
        "50ms",
    ]);
    env.scribe_ok(&["exec", SCHEMA]);
    let rt = rt();
    let c = connect(&env, &rt);
    for i in 0..6 {
        rt.block_on(c.write(keyed(&format!("n{i}"), "p", i)))
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let keys = "SELECT coalesce(sum(n), 0) FROM _scribe_requests";
    while env.count(keys) > 3 {
        assert!(Instant::now() < deadline, "not pruned to the count");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The newest keys are the ones kept: n5 replays.
    let kept = rt.block_on(c.write(keyed("n5", "p", 5))).unwrap();
    assert!(kept.replayed, "{kept:?}");
    while env.count(keys) > 0 {
        assert!(Instant::now() < deadline, "not pruned by age");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A pruned key is forgotten: the same batch writes again.
    let again = rt.block_on(c.write(keyed("n5", "p", 5))).unwrap_err();
    assert!(
        matches!(again, Error::Sql { .. }),
        "UNIQUE(tag, i): {again:?}"
    );
}

#[test]
fn wait_for_returns_at_once_waits_for_a_future_commit_and_times_out() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    env.scribe_ok(&["exec", SCHEMA]);
    let rt = rt();
    let c = connect(&env, &rt);
    let r = rt.block_on(c.write(keyed("w1", "w", 1))).unwrap();
    let reader = Reader::open(&env.paths()).unwrap();
    // A seq already committed is there with no wait at all.
    assert!(reader.wait_for(r.seq, Duration::ZERO).unwrap() >= r.seq);

    let paths = env.paths();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let runtime = self::rt();
        let c = runtime
            .block_on(Connection::connect(&paths, &options()))
            .unwrap();
        runtime.block_on(c.write(keyed("w2", "w", 2))).unwrap().seq
    });
    let seen = reader.wait_for(r.seq + 1, Duration::from_secs(10)).unwrap();
    let later = writer.join().unwrap();
    assert_eq!(seen, later);

    let started = Instant::now();
    match reader.wait_for(later + 100, Duration::from_millis(200)) {
        Err(scribe_reader::Error::Timeout { seen, .. }) => assert_eq!(seen, later),
        other => panic!("{other:?}"),
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(60),
        "{took:?}"
    );
}

#[test]
fn the_cli_honours_keys_and_reads_after_a_seq() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    let insert = [
        "--json",
        "exec",
        "--key",
        "cli-1",
        "INSERT INTO t(tag, i) VALUES ('c', 1)",
    ];
    let first: serde_json::Value = serde_json::from_str(&env.scribe_ok(&insert)).unwrap();
    let again: serde_json::Value = serde_json::from_str(&env.scribe_ok(&insert)).unwrap();
    assert_eq!(first["replayed"], false);
    assert_eq!(again["replayed"], true);
    assert_eq!(again["seq"], first["seq"]);
    // The key for another batch: a conflict, whose JSON leaves out the
    // keys that do not apply to it (it had "statement":null).
    let mut other = insert;
    let at = other.iter().position(|a| a.starts_with("INSERT")).unwrap();
    other[at] = "INSERT INTO t(tag, i) VALUES ('other', 2)";
    let out = env.scribe(&other);
    assert_eq!(out.status.code(), Some(14), "{out:?}");
    let said: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(said["error"]["category"], "conflict", "{said}");
    assert!(said["error"].get("statement").is_none(), "{said}");
    let seq = first["seq"].to_string();
    let rows = env.scribe_ok(&[
        "--json",
        "query",
        "--after",
        &seq,
        "SELECT count(*) AS n FROM t",
    ]);
    assert_eq!(rows.trim(), r#"[{"n":1}]"#);
    let out = env.scribe(&[
        "--timeout",
        "200ms",
        "query",
        "--after",
        "999999",
        "SELECT 1",
    ]);
    assert_eq!(out.status.code(), Some(11), "Timeout");
}

#[test]
fn the_key_count_holds_under_a_sustained_load() {
    let mut env = Env::new();
    // One pruning step for a bound of 500 is 64 keys (a hundredth of the
    // bound, at least 64).
    // No idle housekeeping pass (the commits' own pruning holds the
    // bound): it could take keys between the status and the count below.
    env.start_arbiter(&[
        "--max-keys",
        "500",
        "--synchronous",
        "normal",
        "--prune-every",
        "1h",
    ]);
    env.scribe_ok(&["exec", SCHEMA]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let db = env.db.clone();
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let c = rusqlite::Connection::open_with_flags(
                &db,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .unwrap();
            c.busy_timeout(Duration::from_secs(5)).unwrap();
            let (mut max, mut samples) = (0i64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Only a count actually read is a sample.
                let n = c.query_row(
                    "SELECT coalesce(sum(n), 0) FROM _scribe_requests",
                    [],
                    |r| r.get::<_, i64>(0),
                );
                if let Ok(n) = n {
                    max = max.max(n);
                    samples += 1;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (max, samples)
        })
    };
    let workers: Vec<usize> = (0..8)
        .map(|w| {
            let mut c = env.command(crate::harness::WORKER);
            c.args(["write", &format!("k{w}"), "3000", "4"]);
            env.spawn(c)
        })
        .collect();
    for w in workers {
        let out = env.wait(w, Duration::from_secs(300));
        assert!(out.status.success(), "{}", crate::harness::stderr(&out));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (max, samples) = sampler.join().unwrap();
    println!("24,000 keyed writes: at most {max} keys seen in {samples} samples");
    assert!(samples > 10, "the sampler ran");
    assert!(
        max <= 500 + 64,
        "{max} keys held, over the bound plus one step"
    );
    assert_eq!(env.count("SELECT count(*) FROM t"), 24_000);
    // `status` reports the keys the arbiter's index holds: the table's.
    let status: serde_json::Value =
        serde_json::from_str(&env.scribe_ok(&["--json", "status"])).unwrap();
    let held = env.count("SELECT coalesce(sum(n), 0) FROM _scribe_requests");
    assert_eq!(status["keys"], held, "{status}");
    assert_eq!(status["max_keys"], 500, "{status}");
}
