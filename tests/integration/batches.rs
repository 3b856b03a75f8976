//! Batch semantics through the client library against a real arbiter.

use scribe_client::{Client, Error, Options};
use scribe_protocol::{Batch, Statement, Value};
use scribe_reader::Reader;

use crate::harness::{Env, SCHEMA};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn started() -> (Env, tokio::runtime::Runtime, Client) {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    env.scribe_ok(&["exec", SCHEMA]);
    let rt = runtime();
    let options = Options {
        autostart: false,
        ..Options::default()
    };
    let client = rt
        .block_on(Client::connect(&env.paths(), &options))
        .unwrap();
    (env, rt, client)
}

fn insert(tag: &str, i: i64) -> Statement {
    Statement::new("INSERT INTO t(tag, i) VALUES (?1, ?2)").params(vec![tag.into(), i.into()])
}

#[test]
fn a_failing_batch_rolls_back_alone_and_the_rest_of_its_group_commits() {
    let (env, rt, client) = started();
    let outcomes = rt.block_on(async {
        let calls = (0..200i64).map(|i| {
            let client = client.clone();
            async move {
                let batch = if i % 2 == 0 {
                    Batch::one(insert("good", i))
                } else {
                    // First statement succeeds, second fails: the first
                    // must be undone with it.
                    Batch::new(vec![
                        insert("bad", i),
                        Statement::new("INSERT INTO missing VALUES (1)"),
                    ])
                };
                (i, client.write(batch).await)
            }
        });
        futures_join(calls).await
    });
    let mut good_seqs = Vec::new();
    for (i, outcome) in outcomes {
        match (i % 2, outcome) {
            (0, Ok(r)) => good_seqs.push(r.seq),
            (1, Err(Error::Sql { statement, .. })) => assert_eq!(statement, Some(1)),
            (_, other) => panic!("batch {i}: unexpected {other:?}"),
        }
    }
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'good'"), 100);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'bad'"), 0);
    let status = rt.block_on(client.status()).unwrap();
    assert_eq!(status.failed, 100);
    assert!(
        status.max_group > 1,
        "the 200 concurrent batches never shared a commit"
    );
    // Receipts of one commit share its seq: some good batch shared a
    // commit with others.
    good_seqs.sort_unstable();
    let distinct = {
        let mut d = good_seqs.clone();
        d.dedup();
        d.len()
    };
    assert!(
        distinct < good_seqs.len(),
        "every good batch committed alone"
    );
}

/// Runs futures concurrently on the current task.
async fn futures_join<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    futures::future::join_all(fs).await
}

#[test]
fn an_unmet_expectation_is_a_conflict_and_writes_nothing() {
    let (env, rt, client) = started();
    let batch = Batch::new(vec![
        insert("claim", 1),
        Statement::new("UPDATE t SET i = 2 WHERE tag = 'nobody'").expect_rows(1),
    ]);
    match rt.block_on(client.write(batch)) {
        Err(Error::Conflict { statement, message }) => {
            assert_eq!(statement, Some(1));
            assert!(message.contains("expected 1"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(env.count("SELECT count(*) FROM t"), 0);
    // The same expectation met commits.
    let ok = Batch::new(vec![
        insert("claim", 1),
        Statement::new("UPDATE t SET i = 2 WHERE tag = 'claim'").expect_rows(1),
    ]);
    rt.block_on(client.write(ok)).unwrap();
    assert_eq!(env.count("SELECT i FROM t WHERE tag = 'claim'"), 2);
}

#[test]
fn returning_rows_and_rowids_come_back_in_the_receipt() {
    let (_env, rt, client) = started();
    let batch = Batch::new(vec![
        Statement::new("INSERT INTO t(tag, i) VALUES ('a', 1), ('b', 2) RETURNING id, tag"),
        insert("c", 3),
        // changes() and last_insert_rowid() carry within the batch.
        Statement::new("UPDATE t SET i = last_insert_rowid() * 10 WHERE tag = 'c'"),
    ]);
    let r = rt.block_on(client.write(batch)).unwrap();
    assert_eq!(r.results.len(), 3);
    assert_eq!(r.results[0].columns, vec!["id", "tag"]);
    assert_eq!(
        r.results[0].rows,
        vec![
            vec![Value::Integer(1), Value::Text("a".into())],
            vec![Value::Integer(2), Value::Text("b".into())]
        ]
    );
    assert_eq!(r.results[0].rows_affected, 2);
    assert_eq!(r.results[1].last_insert_rowid, 3);
    assert_eq!(r.results[2].rows_affected, 1);
    assert!(!r.replayed);
}

#[test]
fn an_sql_error_names_the_statement_and_sqlite_code() {
    let (env, rt, client) = started();
    let batch = Batch::new(vec![
        insert("x", 1),
        insert("y", 1),
        insert("x", 1), // UNIQUE(tag, i)
    ]);
    match rt.block_on(client.write(batch)) {
        Err(Error::Sql {
            statement,
            code,
            message,
        }) => {
            assert_eq!(statement, Some(2));
            assert_eq!(code, 2067, "SQLITE_CONSTRAINT_UNIQUE");
            assert!(message.contains("UNIQUE"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(env.count("SELECT count(*) FROM t"), 0);
}

#[test]
fn seq_grows_per_commit_and_readers_see_it() {
    let (env, rt, client) = started();
    let reader = Reader::open(&env.paths()).unwrap();
    let before = reader.current_seq().unwrap();
    let a = rt
        .block_on(client.write(Batch::one(insert("s", 1))))
        .unwrap();
    let b = rt
        .block_on(client.write(Batch::one(insert("s", 2))))
        .unwrap();
    assert_eq!(a.seq, before + 1);
    assert_eq!(b.seq, a.seq + 1);
    assert_eq!(reader.current_seq().unwrap(), b.seq);
    // Failed batches commit nothing and do not move seq.
    let _ = rt
        .block_on(client.write(Batch::one(insert("s", 2))))
        .unwrap_err();
    assert_eq!(reader.current_seq().unwrap(), b.seq);
}

#[test]
fn the_reader_cannot_write() {
    let (env, _rt, _client) = started();
    let reader = Reader::open(&env.paths()).unwrap();
    let err = reader
        .query("INSERT INTO t(tag, i) VALUES ('r', 1)", &Default::default())
        .unwrap_err();
    assert!(err.to_string().contains("readonly"), "{err}");
}
