//! Write sessions (interactive transactions): fair among batches, safe
//! when their holder dies or idles, exactly once when a commit's answer
//! is lost.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use scribe_protocol::{Answer, BeginRequest, Params, Request, Statement, WriteError};
use scribe_tests::raw::Raw;

use crate::harness::{stderr, stdout, Env, LONG_LEASE, SCHEMA, WORKER};

const TASKS: &str = "CREATE TABLE tasks(id INTEGER PRIMARY KEY, status TEXT NOT NULL, owner TEXT);
CREATE TABLE runs(id INTEGER PRIMARY KEY, task INTEGER NOT NULL, worker TEXT NOT NULL);
CREATE TABLE events(id INTEGER PRIMARY KEY, task INTEGER NOT NULL, run INTEGER NOT NULL, kind TEXT NOT NULL);";

#[test]
fn eight_claimers_in_sessions_and_four_batch_writers_never_collide() {
    let mut env = Env::new();
    env.start_arbiter(&["--synchronous", "normal"]);
    let schema = env.dir.path().join("schema.sql");
    std::fs::write(&schema, format!("{TASKS}\n{SCHEMA};")).unwrap();
    env.scribe_ok(&["exec", "--file", schema.to_str().unwrap()]);
    env.scribe_ok(&[
        "exec",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) \
         INSERT INTO tasks(id, status) SELECT i, 'ready' FROM n",
    ]);
    let mut claimers = Vec::new();
    for w in 0..8 {
        let log = env.dir.path().join(format!("c{w}.log"));
        let mut c = env.command(WORKER);
        c.arg("claim-session").arg(format!("c{w}")).arg(&log);
        claimers.push((env.spawn(c), log));
    }
    let writers: Vec<usize> = (0..4)
        .map(|w| {
            let mut c = env.command(WORKER);
            c.args(["write", &format!("b{w}"), "300", "2"]);
            env.spawn(c)
        })
        .collect();
    let mut claimed = Vec::new();
    for (i, log) in claimers {
        let out = env.wait(i, Duration::from_secs(300));
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(out.status.success(), "{said}");
        assert!(
            !said.contains("locked") && !said.to_ascii_uppercase().contains("BUSY"),
            "{said}"
        );
        claimed.extend(
            std::fs::read_to_string(log)
                .unwrap()
                .lines()
                .map(|l| l.parse::<i64>().unwrap()),
        );
    }
    for w in writers {
        let out = env.wait(w, Duration::from_secs(300));
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let unique: HashSet<i64> = claimed.iter().copied().collect();
    assert_eq!(unique.len(), claimed.len(), "a task was claimed twice");
    assert_eq!(claimed.len(), 400, "every task claimed once");
    assert_eq!(env.count("SELECT count(*) FROM runs"), 400);
    assert_eq!(env.count("SELECT count(DISTINCT task) FROM runs"), 400);
    assert_eq!(env.count("SELECT count(*) FROM events"), 400);
    assert_eq!(
        env.count("SELECT count(*) FROM t"),
        1200,
        "every batch acknowledged"
    );
}

#[test]
fn a_killed_holder_is_rolled_back_and_the_queue_moves_at_once() {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    let held = env.hold_writer("held");
    // A write that waits behind the session.
    let mut w = env.command(crate::harness::SCRIBE);
    w.args(["exec", "INSERT INTO t(tag, i) VALUES ('after', 1)"]);
    let waiting = env.spawn(w);
    env.wait_status(|s| s["queue_depth"].as_u64() == Some(1) && !s["session"].is_null());
    let killed = Instant::now();
    kill(Pid::from_raw(held.pid() as i32), Signal::SIGKILL).unwrap();
    let c = env.sqlite();
    while c
        .query_row("SELECT count(*) FROM t WHERE tag = 'after'", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
        == 0
    {
        // Well inside the 300 s lease: the queue moved because of the
        // kill, not because the session lapsed.
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "the queue never moved"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = killed.elapsed();
    println!("the write queued behind the killed session committed {after:?} after the kill");
    drop(held);
    assert!(env.wait(waiting, Duration::from_secs(30)).status.success());
    assert_eq!(
        env.count("SELECT count(*) FROM t WHERE tag = 'held'"),
        0,
        "nothing of the killed session was written"
    );
}

#[test]
fn an_idle_session_lapses_its_caller_is_told_and_the_queue_moves() {
    let mut env = Env::new();
    env.start_arbiter(&["--session-idle", "2s", "--session-total", "300s"]);
    env.scribe_ok(&["exec", SCHEMA]);
    let held = env.hold_writer("idle");
    // This write can only go once the silent session has lapsed.
    let mut w = env.command(crate::harness::SCRIBE);
    w.args(["exec", "INSERT INTO t(tag, i) VALUES ('behind', 1)"]);
    let behind = env.spawn(w);
    assert!(env.wait(behind, Duration::from_secs(60)).status.success());
    // The holder speaks again only now, and learns why its session ended.
    let out = held.release();
    assert_eq!(out.status.code(), Some(18), "{}", stdout(&out));
    assert!(stdout(&out).contains("idle"), "{}", stdout(&out));
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'idle'"), 0);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'behind'"), 1);
}

#[test]
fn a_commit_whose_answer_is_lost_is_asked_again_by_key_and_applied_once() {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    let socket = env.paths().socket;
    let mut first = Raw::greeted(&socket);
    let session = match first.call(&Request::Begin(BeginRequest::default())) {
        Ok(Answer::Began(b)) => b.session,
        other => panic!("{other:?}"),
    };
    let st = Statement::new("INSERT INTO t(tag, i) VALUES ('lost', 1)");
    assert!(matches!(
        first.call(&Request::Exec {
            session,
            statement: st
        }),
        Ok(Answer::Executed(_))
    ));
    // The commit goes out; the connection is cut before its answer.
    first.send(&Request::Commit {
        session,
        key: Some("lost-1".into()),
        open_on_constraint: false,
    });
    first.stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(first);
    let mut again = Raw::greeted(&socket);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let receipt = loop {
        match again.call(&Request::Commit {
            session,
            key: Some("lost-1".into()),
            open_on_constraint: false,
        }) {
            Ok(Answer::Receipt(r)) => break r,
            // The first commit may still be on its way to the writer.
            Err(WriteError::Expired { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => panic!("{other:?}"),
        }
    };
    assert!(receipt.replayed);
    let twice = again.call(&Request::Commit {
        session: 999,
        key: Some("lost-1".into()),
        open_on_constraint: false,
    });
    assert!(
        matches!(twice, Ok(Answer::Receipt(ref r)) if r.seq == receipt.seq),
        "{twice:?}"
    );
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'lost'"), 1);
    // A key a plain write used is not a commit's: asking a commit again
    // under it is a conflict, never that write's receipt.
    let write = Request::Write(scribe_protocol::Batch {
        key: Some("write-1".into()),
        ..scribe_protocol::Batch::one(Statement::new("INSERT INTO t(tag, i) VALUES ('lost', 2)"))
    });
    assert!(matches!(again.call(&write), Ok(Answer::Receipt(_))));
    let mixed = again.call(&Request::Commit {
        session: 999,
        key: Some("write-1".into()),
        open_on_constraint: false,
    });
    assert!(
        matches!(mixed, Err(WriteError::Conflict { .. })),
        "{mixed:?}"
    );
}

#[test]
fn a_transaction_gives_up_at_once_while_the_arbiter_is_held_stopped() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    env.scribe_ok(&["exec", SCHEMA]);
    let options = scribe_client::Options {
        arbiter_bin: Some(crate::harness::SCRIBED.into()),
        retry_for: Duration::from_secs(60),
        ..scribe_client::Options::default()
    };
    let client = scribe_client::blocking::Client::connect(&env.paths(), &options).unwrap();
    env.scribe_ok(&["stop", "--hold"]);
    let started = Instant::now();
    let out = client.transaction(|tx| {
        tx.execute(
            "INSERT INTO t(tag, i) VALUES ('held', 1)",
            scribe_protocol::Params::None,
        )
        .map(drop)
    });
    let took = started.elapsed();
    match out {
        Err(WriteError::Unavailable { reason }) => {
            assert!(reason.contains("--hold"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Not retried for the minute it may retry: the stop is on purpose.
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn a_statement_failing_its_expected_row_count_undoes_only_itself() {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    let (rt, c) = crate::harness::client(&env.paths());
    let receipt = rt.block_on(async {
        let tx = c.begin().await?;
        tx.exec(Statement::new(
            "INSERT INTO t(tag, i) VALUES ('a', 1), ('a', 2), ('a', 3)",
        ))
        .await?;
        // Three rows change, two were expected: the statement fails after
        // it ran, and must leave nothing behind, as SQLite's own failures.
        match tx
            .exec(Statement::new("UPDATE t SET i = i + 10 WHERE tag = 'a'").expect_rows(2))
            .await
        {
            Err(WriteError::Conflict { .. }) => {}
            other => panic!("{other:?}"),
        }
        // The same for RETURNING rows of a statement that then fails.
        match tx
            .exec(Statement::new("DELETE FROM t WHERE i = 1 RETURNING tag, i").expect_rows(5))
            .await
        {
            Err(WriteError::Conflict { .. }) => {}
            other => panic!("{other:?}"),
        }
        let seen = tx.exec(Statement::new("SELECT sum(i) FROM t")).await?;
        assert_eq!(format!("{:?}", seen.rows[0][0]), "Integer(6)");
        tx.commit().await
    });
    receipt.unwrap();
    assert_eq!(env.count("SELECT sum(i) FROM t WHERE tag = 'a'"), 6);
    assert_eq!(env.count("SELECT count(*) FROM t"), 3);
}

/// A session's begin and end are not lines of the arbiter's log at its
/// default level: a program that runs its transactions as sessions (the
/// Python drop-in's `BEGIN IMMEDIATE`) begins thousands a second, and
/// the log grew by a line for each.
#[test]
fn sessions_leave_no_line_each_in_the_log() {
    let mut env = Env::new();
    let log = env.dir.path().join("arbiter.log");
    env.start_arbiter_logged_at(&["--synchronous", "normal"], &log, "info");
    env.scribe_ok(&["exec", SCHEMA]);
    let (rt, c) = crate::harness::client(&env.paths());
    const SESSIONS: i64 = 200;
    for i in 0..SESSIONS {
        rt.block_on(c.transaction(|tx| async move {
            tx.execute(
                "INSERT INTO t(tag, i) VALUES ('s', ?1)",
                Params::Positional(vec![i.into()]),
            )
            .await?;
            Ok(())
        }))
        .unwrap();
    }
    assert_eq!(env.count("SELECT count(*) FROM t"), SESSIONS);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().count() < 20,
        "{} lines for {SESSIONS} sessions: {}",
        text.lines().count(),
        text.lines().take(5).collect::<Vec<_>>().join("\n")
    );
}

/// A statement after which SQLite rolls the whole transaction back (`OR
/// ROLLBACK`, a trigger's `RAISE(ROLLBACK)`) is answered with its own SQL
/// error, marked rolled back, not as a lapsed session: the session is
/// over, its later calls answer the same, and the transaction helper does
/// not run again what would only fail again.
#[test]
fn a_statement_sqlite_rolls_back_with_ends_the_session_with_its_own_error() {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('x', 1)"]);
    let (rt, c) = crate::harness::client(&env.paths());
    let dup = "INSERT OR ROLLBACK INTO t(tag, i) VALUES ('x', 1)";
    rt.block_on(async {
        let tx = c.begin().await.unwrap();
        tx.exec(Statement::new("INSERT INTO t(tag, i) VALUES ('a', 1)"))
            .await
            .unwrap();
        match tx.exec(Statement::new(dup)).await {
            Err(e @ WriteError::RolledBack { code: 2067, .. }) => {
                assert_eq!(e.category(), scribe_protocol::Category::Sql);
                assert!(e.to_string().contains("UNIQUE constraint failed"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        match tx
            .exec(Statement::new("INSERT INTO t(tag, i) VALUES ('b', 1)"))
            .await
        {
            // Answered again: the session is over (and the writer free:
            // with a 300 s lease, the transactions below would wait).
            Err(WriteError::RolledBack { code: 2067, .. }) => {}
            other => panic!("{other:?}"),
        }
        let runs = std::cell::Cell::new(0);
        let r = c
            .transaction(|tx| {
                runs.set(runs.get() + 1);
                async move {
                    tx.execute("INSERT INTO t(tag, i) VALUES ('c', 1)", Params::None)
                        .await?;
                    tx.execute(dup, Params::None).await?;
                    Ok(())
                }
            })
            .await;
        assert!(matches!(r, Err(WriteError::RolledBack { .. })), "{r:?}");
        assert_eq!(runs.get(), 1, "run again although it would fail again");
        // A closure that swallows the error: its next call answers it
        // again, not `Expired` (which would have it run again).
        runs.set(0);
        let r = c
            .transaction(|tx| {
                runs.set(runs.get() + 1);
                async move {
                    let _ = tx.execute(dup, Params::None).await;
                    tx.execute("INSERT INTO t(tag, i) VALUES ('d', 1)", Params::None)
                        .await?;
                    Ok(())
                }
            })
            .await;
        assert!(matches!(r, Err(WriteError::RolledBack { .. })), "{r:?}");
        assert_eq!(runs.get(), 1, "run again although it would fail again");
    });
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
}
