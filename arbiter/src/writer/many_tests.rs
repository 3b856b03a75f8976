//! `exec_many`: the statements run in order until one fails; cut short on
//! the adapters' thread, the rest goes to the writer thread, which puts
//! the transaction back first and counts what ran before it.

use std::sync::Arc;
use std::time::Instant;

use scribe_protocol::{Answer, BeginRequest, Reply, Statement, StatementResult, Value, WriteError};
use tokio::sync::oneshot;

use super::super::link::{SessionLink, SessionOp};
use super::super::queue::Queue;
use super::super::rebuild::KEEP_BYTES;
use super::super::session::call_here;
use super::super::stage::Stage;
use super::super::{Msg, ReplyTo};
use super::Many;

/// The table's values, in order.
const ORDERED: &str = "SELECT x FROM t ORDER BY x";

/// A statement that runs until SQLite interrupts it.
const FOREVER: &str =
    "INSERT INTO t WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
                       SELECT count(*) FROM r";

fn serving(dir: &tempfile::TempDir) -> (Arc<Stage>, Queue<Msg>, Arc<SessionLink>) {
    let (stage, rx) = super::super::session_tests::writer(dir);
    let link = SessionLink::new(1, (0, 0), BeginRequest::default());
    let (began, _) = oneshot::channel();
    let mut w = stage.writer().lock().unwrap();
    w.session
        .conn
        .execute_batch("CREATE TABLE t(x UNIQUE)")
        .unwrap();
    assert!(w.begin_serving(link.clone(), ReplyTo::Oneshot(began), false));
    drop(w);
    (stage, rx, link)
}

fn inserts(values: &[i64]) -> Vec<Statement> {
    values
        .iter()
        .map(|v| Statement::new("INSERT INTO t VALUES (?1)").params(vec![Value::Integer(*v)]))
        .collect()
}

fn exec_many(statements: Vec<Statement>) -> (SessionOp, oneshot::Receiver<Reply>) {
    let (tx, rx) = oneshot::channel();
    (
        SessionOp::ExecMany(Many::new(statements), ReplyTo::Oneshot(tx)),
        rx,
    )
}

/// The integers `sql` reads in the session's transaction.
fn rows(stage: &Stage, sql: &str) -> Vec<i64> {
    let w = stage.writer().lock().unwrap();
    let mut st = w.session.conn.prepare(sql).unwrap();
    let out = st.query_map([], |r| r.get(0)).unwrap();
    out.map(Result::unwrap).collect()
}

fn result(rx: &mut oneshot::Receiver<Reply>) -> StatementResult {
    match rx.try_recv() {
        Ok(Ok(Answer::Executed(r))) => r,
        other => panic!("not executed: {other:?}"),
    }
}

#[test]
fn the_counts_add_up_and_the_first_failure_ends_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let (stage, rx, link) = serving(&dir);
    let (op, mut answer) = exec_many(inserts(&[1, 2, 3]));
    call_here(&stage, &rx, &link, op).unwrap();
    let r = result(&mut answer);
    assert_eq!((r.rows_affected, r.last_insert_rowid), (3, 3));

    // The third repeats a value: the two before it stay, the fourth never runs.
    let (op, mut answer) = exec_many(inserts(&[4, 5, 1, 6]));
    call_here(&stage, &rx, &link, op).unwrap();
    match answer.try_recv() {
        Ok(Err(WriteError::Sql { message, .. })) => {
            assert!(message.contains("UNIQUE"), "{message}")
        }
        other => panic!("not the constraint: {other:?}"),
    }
    assert_eq!(rows(&stage, ORDERED), [1, 2, 3, 4, 5]);
    let w = stage.writer().lock().unwrap();
    assert!(
        w.serves(link.id),
        "a failed statement leaves the session open"
    );
}

#[test]
fn cut_short_part_way_the_rest_goes_on_without_running_the_first_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (stage, rx, link) = serving(&dir);
    let forever = FOREVER;
    let mut statements = inserts(&[1, 2]);
    statements.push(Statement::new(forever));
    statements.extend(inserts(&[3]));
    let (op, mut answer) = exec_many(statements);
    let back = call_here(&stage, &rx, &link, op).expect_err("cut short and given back");
    assert!(
        answer.try_recv().is_err(),
        "no answer yet: the writer thread owes it"
    );
    let SessionOp::ExecMany(mut many, to) = back else {
        panic!("not the exec_many");
    };
    assert_eq!(
        many.left.len(),
        2,
        "the slow statement and the one after it"
    );
    assert_eq!(many.left[0].sql, forever);
    assert_eq!(many.affected, 2, "the two before it are counted");
    // The writer thread would run the slow statement with no slice; here
    // it is swapped for a quick one, to see what runs around it.
    many.left[0] = inserts(&[10]).remove(0);
    let mut w = stage.writer().lock().unwrap();
    assert!(w.serving.as_ref().is_some_and(|s| s.rebuild && s.pinned));
    assert!(w.call(SessionOp::ExecMany(many, to), false).is_none());
    drop(w);
    let r = result(&mut answer);
    assert_eq!(r.rows_affected, 4);
    assert_eq!(
        rows(&stage, ORDERED),
        [1, 2, 3, 10],
        "the transaction put back, nothing twice"
    );
}

#[test]
fn a_call_that_held_the_thread_for_a_slice_leaves_the_rest_to_the_writer_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (stage, _rx, _link) = serving(&dir);
    let mut w = stage.writer().lock().unwrap();
    // A slice that is over already: one statement runs, the rest goes.
    let back = match w.exec_many_until(Many::new(inserts(&[1, 2, 3])), true, Instant::now()) {
        Err(many) => many,
        Ok(_) => panic!("it ran to the end on a slice that was over"),
    };
    assert_eq!((back.left.len(), back.affected), (2, 1));
    let s = w.serving.as_ref().unwrap();
    assert!(s.pinned, "its later calls run on the writer thread");
    assert!(
        !s.rebuild,
        "the transaction holds what ran: nothing to put back"
    );
    // The writer thread's side finishes it.
    match w.exec_many(back, false) {
        Ok(super::Step::Ran(Ok(r))) => assert_eq!((r.rows_affected, r.last_insert_rowid), (3, 3)),
        _ => panic!("not finished"),
    }
    drop(w);
    assert_eq!(rows(&stage, ORDERED), [1, 2, 3]);
}

#[test]
fn a_statement_that_takes_the_session_past_what_is_kept_ends_the_slicing_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (stage, rx, link) = serving(&dir);
    // The first statement is kept past the bound (the session is pinned);
    // the second would be cut by the slice, with nothing kept to put the
    // transaction back with: it must not run here at all.
    let forever = FOREVER;
    let big =
        Statement::new("INSERT INTO t VALUES (?1)")
            .params(vec![Value::Blob(vec![7; KEEP_BYTES + 1])]);
    let (op, mut answer) = exec_many(vec![big, Statement::new(forever)]);
    let back = call_here(&stage, &rx, &link, op).expect_err("the rest goes to the writer thread");
    assert!(answer.try_recv().is_err(), "no answer yet");
    let SessionOp::ExecMany(many, _) = back else {
        panic!("not the exec_many");
    };
    assert_eq!((many.left.len(), many.affected), (1, 1));
    {
        let w = stage.writer().lock().unwrap();
        let s = w.serving.as_ref().unwrap();
        assert!(s.pinned && !s.rebuild, "pinned, the transaction as it is");
        assert!(s.history.is_none());
    }
    assert_eq!(
        rows(&stage, "SELECT count(*) FROM t"),
        [1],
        "the first statement's row stays in the transaction"
    );
}
