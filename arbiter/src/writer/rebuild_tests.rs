//! A session's statement cut short on the adapters' thread: given back
//! for the writer thread, the session pinned there; a session past what
//! is kept to run again is never cut short.

use std::sync::Arc;

use scribe_protocol::{Answer, BeginRequest, Reply, Statement, Value};
use tokio::sync::oneshot;

use super::link::{SessionLink, SessionOp};
use super::queue::Queue;
use super::rebuild::KEEP_BYTES;
use super::session::call_here;
use super::stage::Stage;
use super::{Msg, ReplyTo};

fn serving(dir: &tempfile::TempDir) -> (Arc<Stage>, Queue<Msg>, Arc<SessionLink>) {
    let (stage, rx) = super::session_tests::writer(dir);
    let link = SessionLink::new(1, (0, 0), BeginRequest::default());
    let (began, _) = oneshot::channel();
    let mut w = stage.writer().lock().unwrap();
    w.session.conn.execute_batch("CREATE TABLE t(x)").unwrap();
    assert!(w.begin_serving(link.clone(), ReplyTo::Oneshot(began), false));
    drop(w);
    (stage, rx, link)
}

fn exec(st: Statement) -> (SessionOp, oneshot::Receiver<Reply>) {
    let (tx, rx) = oneshot::channel();
    (SessionOp::Exec(st, ReplyTo::Oneshot(tx)), rx)
}

fn executed(rx: &mut oneshot::Receiver<Reply>) -> bool {
    matches!(rx.try_recv(), Ok(Ok(Answer::Executed(_))))
}

#[test]
fn a_query_cut_short_comes_back_unanswered_and_the_transaction_stays() {
    let dir = tempfile::tempdir().unwrap();
    let (stage, rx, link) = serving(&dir);
    let (insert, mut insert_rx) = exec(Statement::new("INSERT INTO t VALUES (1)"));
    call_here(&stage, &rx, &link, insert).unwrap();
    assert!(executed(&mut insert_rx));
    let forever = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
                   SELECT count(*) FROM r";
    let (slow, mut slow_rx) = exec(Statement::new(forever));
    let back = call_here(&stage, &rx, &link, slow).expect_err("cut short and given back");
    assert!(matches!(back, SessionOp::Exec(ref st, _) if st.sql == forever));
    assert!(
        slow_rx.try_recv().is_err(),
        "no answer yet: the writer thread owes it"
    );
    let w = stage.writer().lock().unwrap();
    // A query interrupted leaves SQLite's transaction as it was: the
    // writer thread runs it again on top, without putting the session's
    // statements back first (a write cut short is put back: an interrupt
    // can also come as a finished write returns, its changes kept).
    assert!(!w.session.conn.is_autocommit());
    assert!(w.serving.as_ref().is_some_and(|s| !s.rebuild && s.pinned));
    let n: i64 = w
        .session
        .conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    drop(w);
    // Its later calls stay on the writer thread.
    let (next, _) = exec(Statement::new("SELECT 1"));
    assert!(call_here(&stage, &rx, &link, next).is_err());
}

#[test]
fn a_write_cut_short_is_put_back_before_it_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let (stage, rx, link) = serving(&dir);
    let forever = "INSERT INTO t SELECT n FROM (WITH RECURSIVE r(n) AS \
                   (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r)";
    let (slow, _) = exec(Statement::new(forever));
    call_here(&stage, &rx, &link, slow).expect_err("cut short and given back");
    let w = stage.writer().lock().unwrap();
    assert!(w.serving.as_ref().is_some_and(|s| s.rebuild && s.pinned));
}

#[test]
fn a_session_past_what_is_kept_runs_on_the_writer_thread_from_then_on() {
    let dir = tempfile::tempdir().unwrap();
    let (stage, rx, link) = serving(&dir);
    let big =
        Statement::new("INSERT INTO t VALUES (?1)")
            .params(vec![Value::Blob(vec![7; KEEP_BYTES + 1])]);
    let (insert, mut insert_rx) = exec(big);
    call_here(&stage, &rx, &link, insert).unwrap();
    assert!(executed(&mut insert_rx), "it ran here");
    // It could not be put back if cut short: nothing more runs here.
    let (next, _) = exec(Statement::new("SELECT 1"));
    assert!(call_here(&stage, &rx, &link, next).is_err());
}
