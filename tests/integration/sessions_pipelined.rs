//! A session's begin and its calls sent together, before the session's id
//! is known (`LATEST_SESSION` names the one most recently begun on the
//! connection): the calls wait for the begin and run in order, and a
//! refused begin fails them with a message that points at it.

use scribe_protocol::{
    Answer, BeginRequest, Reply, Request, Statement, Value, WriteError, LATEST_SESSION,
};
use scribe_tests::raw::Raw;

use crate::harness::{Env, LONG_LEASE, SCHEMA};

fn insert(i: i64) -> Request {
    Request::Exec {
        session: LATEST_SESSION,
        statement: Statement::new(format!("INSERT INTO t(tag, i) VALUES ('piped', {i})")),
    }
}

/// The answers to `ids`, in whatever order they come.
fn answers(raw: &mut Raw, ids: &[u32]) -> Vec<Reply> {
    let mut got: Vec<Option<Reply>> = ids.iter().map(|_| None).collect();
    while got.iter().any(Option::is_none) {
        let (id, reply) = raw.recv().expect("an answer");
        let at = ids.iter().position(|&i| i == id).expect("an id sent");
        got[at] = Some(reply);
    }
    got.into_iter().map(Option::unwrap).collect()
}

/// An arbiter started with `args` (and long leases), its schema made, and
/// a session of another connection holding the writer: the connection
/// and that session's id.
fn held(env: &mut Env, args: &[&str]) -> (Raw, u64) {
    let mut all = LONG_LEASE.to_vec();
    all.extend(args);
    env.start_arbiter(&all);
    env.scribe_ok(&["exec", SCHEMA]);
    let mut holder = Raw::greeted(&env.paths().socket);
    match holder.call(&Request::Begin(BeginRequest::default())) {
        Ok(Answer::Began(b)) => (holder, b.session),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_begin_and_its_calls_sent_together_run_in_order_once_the_writer_serves_it() {
    let mut env = Env::new();
    // Another session holds the writer, so the begin below must wait in
    // the queue while its calls are already on the arbiter.
    let (mut holder, held) = held(&mut env, &[]);
    let socket = env.paths().socket;
    let mut raw = Raw::greeted(&socket);
    let ids = [
        raw.send(&Request::Begin(BeginRequest::default())),
        raw.send(&insert(1)),
        raw.send(&Request::Exec {
            session: LATEST_SESSION,
            statement: Statement::new("SELECT count(*) FROM t WHERE tag = 'piped'"),
        }),
        raw.send(&Request::Commit {
            session: LATEST_SESSION,
            key: None,
            open_on_constraint: false,
        }),
    ];
    // The begin waits in the queue (its calls behind it) before the holder
    // lets go.
    env.wait_status(|s| s["queue_depth"].as_u64() == Some(1));
    assert!(matches!(
        holder.call(&Request::Rollback { session: held }),
        Ok(Answer::RolledBack)
    ));
    let got = answers(&mut raw, &ids);
    assert!(matches!(got[0], Ok(Answer::Began(_))), "{:?}", got[0]);
    assert!(
        matches!(got[1], Ok(Answer::Executed(ref r)) if r.rows_affected == 1),
        "{:?}",
        got[1]
    );
    // The read ran after the insert, in the session: it sees the row.
    match &got[2] {
        Ok(Answer::Executed(r)) => assert_eq!(r.rows[0][0], 1i64.into()),
        other => panic!("{other:?}"),
    }
    assert!(matches!(got[3], Ok(Answer::Receipt(_))), "{:?}", got[3]);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'piped'"), 1);
}

#[test]
fn a_call_behind_a_refused_begin_fails_and_points_at_the_begin() {
    let mut env = Env::new();
    let (mut holder, held) = held(&mut env, &["--queue-capacity", "1"]);
    let socket = env.paths().socket;
    // One begin waits in the queue and fills it...
    let mut queued = Raw::greeted(&socket);
    let waiting = queued.send(&Request::Begin(BeginRequest::default()));
    env.wait_status(|s| s["queue_depth"].as_u64() == Some(1));
    // ... so this one is refused, and the call sent with it fails.
    let mut raw = Raw::greeted(&socket);
    let ids = [
        raw.send(&Request::Begin(BeginRequest::default())),
        raw.send(&insert(2)),
        // A keyed commit behind it fails with it too (never a replay).
        raw.send(&Request::Commit {
            session: LATEST_SESSION,
            key: Some("piped-1".into()),
            open_on_constraint: false,
        }),
    ];
    let got = answers(&mut raw, &ids);
    assert!(
        matches!(got[0], Err(WriteError::Overloaded { .. })),
        "{:?}",
        got[0]
    );
    for call in &got[1..] {
        match call {
            Err(WriteError::Protocol { message }) => {
                assert!(
                    message.contains("begin sent with this call failed"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        holder.call(&Request::Rollback { session: held }),
        Ok(Answer::RolledBack)
    ));
    match queued.recv() {
        Some((id, Ok(Answer::Began(_)))) => assert_eq!(id, waiting),
        other => panic!("{other:?}"),
    }
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'piped'"), 0);
}

/// A client of `env`'s arbiter on `rt`.
fn client_on(
    env: &Env,
    rt: tokio::runtime::Runtime,
) -> (tokio::runtime::Runtime, scribe_client::Client) {
    let options = scribe_client::Options {
        autostart: false,
        ..scribe_client::Options::default()
    };
    let client = rt
        .block_on(scribe_client::Client::connect(&env.paths(), &options))
        .unwrap();
    (rt, client)
}

fn client(env: &Env) -> (tokio::runtime::Runtime, scribe_client::Client) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    client_on(env, rt)
}

#[test]
fn a_transaction_begins_with_its_first_call_even_from_two_clones_at_once() {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    let (rt, client) = client(&env);
    // Two clones make the first call together: one begins the session,
    // the other waits for it (two begins on one connection would queue
    // the second session behind the first until its lease lapsed).
    let (leases, rows) = rt
        .block_on(client.transaction(|tx| async move {
            let before = tx.lease();
            let other = tx.clone();
            let (a, b) = tokio::join!(
                tx.exec(Statement::new("INSERT INTO t(tag, i) VALUES ('lazy', 1)")),
                other.exec(Statement::new("INSERT INTO t(tag, i) VALUES ('lazy', 2)"))
            );
            let rows = a?.rows_affected + b?.rows_affected;
            Ok(((before, tx.lease()), rows))
        }))
        .unwrap();
    assert_eq!(rows, 2);
    assert!(leases.0.is_none(), "nothing was sent before the first call");
    assert!(
        leases.1.is_some(),
        "the first call's begin brought the lease"
    );
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'lazy'"), 2);
    // A transaction that makes no call commits all the same (its begin
    // goes with the commit); one that fails before any call sends nothing.
    rt.block_on(client.transaction(|_tx| async move { Ok(()) }))
        .unwrap();
    let failed: Result<(), WriteError> = rt.block_on(client.transaction(|_tx| async move {
        Err(WriteError::Conflict {
            statement: None,
            message: "decided in code".into(),
        })
    }));
    assert!(
        matches!(failed, Err(WriteError::Conflict { .. })),
        "{failed:?}"
    );
    // Session ids count every begin: two so far (the first transaction,
    // the empty one), none for the one that failed before any call.
    let mut raw = Raw::greeted(&env.paths().socket);
    match raw.call(&Request::Begin(BeginRequest::default())) {
        Ok(Answer::Began(b)) => assert_eq!(b.session, 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_commit_asked_again_by_key_never_takes_the_connections_open_session() {
    let mut env = Env::new();
    let (mut raw, open) = held(&mut env, &[]);
    // Asking about a lost commit on a connection that has a session open
    // is a replay by key (answered once the writer is free), whatever
    // session that is: the open one goes on, and is not committed.
    let ids = [
        raw.send(&Request::Commit {
            session: 0,
            key: Some("never-committed".into()),
            open_on_constraint: false,
        }),
        raw.send(&Request::Exec {
            session: open,
            statement: Statement::new("INSERT INTO t(tag, i) VALUES ('open', 1)"),
        }),
        raw.send(&Request::Rollback { session: open }),
    ];
    let got = answers(&mut raw, &ids);
    assert!(
        matches!(got[0], Err(WriteError::Expired { .. })),
        "{:?}",
        got[0]
    );
    assert!(matches!(got[1], Ok(Answer::Executed(_))), "{:?}", got[1]);
    assert!(matches!(got[2], Ok(Answer::RolledBack)), "{:?}", got[2]);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'open'"), 0);
}

#[test]
fn transactions_from_many_threads_on_one_connection_each_commit_once() {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    // Tasks on several threads share the client's one connection: a
    // begin and its first call must leave together, or another task's
    // begin between them would give the call to the wrong session.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let (rt, client) = client_on(&env, rt);
    let tasks: Vec<_> = (0..8i64)
        .map(|task| {
            let client = client.clone();
            rt.spawn(async move {
                for n in 0..25i64 {
                    let i = task * 1000 + n;
                    client
                        .transaction(|tx| async move {
                            let st = Statement::new("INSERT INTO t(tag, i) VALUES ('threads', ?1)")
                                .params(vec![i.into()]);
                            tx.exec(st).await.map(|_| ())
                        })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        rt.block_on(t).unwrap();
    }
    assert_eq!(
        env.count("SELECT count(*) FROM t WHERE tag = 'threads'"),
        200
    );
}

/// `exec_many` as a transaction's first call goes out with its begin;
/// its counts add up, and the first statement that fails ends the call
/// with the ones before it kept in the session (an `executemany`).
#[test]
fn exec_many_goes_with_the_begin_and_stops_at_the_first_failure() {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    let (rt, c) = crate::harness::client(&env.paths());
    let insert = |tag: &str, i: i64| {
        Statement::new("INSERT INTO t(tag, i) VALUES (?1, ?2)")
            .params(vec![Value::Text(tag.into()), Value::Integer(i)])
    };
    let receipt = rt.block_on(async {
        let tx = c.begin().await?;
        let all = tx
            .exec_many((1..=500).map(|i| insert("m", i)).collect())
            .await?;
        assert_eq!((all.rows_affected, all.last_insert_rowid), (500, 500));
        match tx
            .exec_many(vec![insert("n", 1), insert("m", 7), insert("n", 2)])
            .await
        {
            Err(WriteError::Sql { message, .. }) => {
                assert!(message.contains("UNIQUE"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        tx.commit().await
    });
    receipt.unwrap();
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'm'"), 500);
    assert_eq!(
        env.count("SELECT count(*) FROM t WHERE tag = 'n'"),
        1,
        "the one before the failure, not the one after"
    );
}
