//! A session's calls on the adapters' thread: they run there only when no
//! earlier call of the session still waits in its link, so a call never
//! overtakes one before it.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use scribe_protocol::{Answer, BeginRequest, Paths, Reply, Statement};
use tokio::sync::oneshot;

use super::link::{SessionLink, SessionOp};
use super::run::{test_settings, Writer};
use super::session::call_here;
use super::ReplyTo;
use crate::config::Config;
use crate::stats::Stats;

fn writer(dir: &tempfile::TempDir) -> Mutex<Writer> {
    let paths = Paths::for_db(&dir.path().join("s.db"), None).unwrap();
    let (session, _) = crate::db::open_writer(&Config::new(paths)).unwrap();
    Mutex::new(Writer::new(
        session,
        Arc::new(Stats::new(0)),
        &test_settings(),
        None,
    ))
}

fn exec(sql: &str) -> (SessionOp, oneshot::Receiver<Reply>) {
    let (tx, rx) = oneshot::channel();
    (
        SessionOp::Exec(Statement::new(sql), ReplyTo::Oneshot(tx)),
        rx,
    )
}

fn executed(rx: &mut oneshot::Receiver<Reply>) -> bool {
    matches!(rx.try_recv(), Ok(Ok(Answer::Executed(_))))
}

#[test]
fn a_call_runs_here_only_when_no_earlier_call_waits_in_the_link() {
    let dir = tempfile::tempdir().unwrap();
    let writer = writer(&dir);
    let link = SessionLink::new(7, (0, 0), BeginRequest::default());
    let (began, mut began_rx) = oneshot::channel();
    assert!(writer
        .lock()
        .unwrap()
        .begin_serving(link.clone(), ReplyTo::Oneshot(began)));
    assert!(matches!(began_rx.try_recv(), Ok(Ok(Answer::Began(_)))));

    // A call that went through the link (the writer was busy) and has not
    // run yet...
    let (create, mut create_rx) = exec("CREATE TABLE t(x)");
    link.send(create).unwrap();
    // ... is not overtaken by the next, though the writer is free now.
    let (insert, mut insert_rx) = exec("INSERT INTO t VALUES (1)");
    let insert = call_here(&writer, &link, insert).expect_err("it would overtake");
    link.send(insert).unwrap();
    assert!(!executed(&mut create_rx) && !executed(&mut insert_rx));

    // The writer thread's side runs both, in order.
    for _ in 0..2 {
        let op = link.next(Instant::now()).unwrap();
        writer.lock().unwrap().call(op, false);
        link.ran();
    }
    assert!(executed(&mut create_rx), "the first call ran");
    assert!(executed(&mut insert_rx), "the second ran after it");

    // Nothing waits in the link: the commit runs here, at once, and ends
    // the session; its link refuses what comes later.
    let (tx, mut commit_rx) = oneshot::channel();
    call_here(
        &writer,
        &link,
        SessionOp::Commit(None, ReplyTo::Oneshot(tx)),
    )
    .unwrap();
    assert!(matches!(commit_rx.try_recv(), Ok(Ok(Answer::Receipt(_)))));
    assert!(!writer.lock().unwrap().serves(7));
    let (late, _) = exec("SELECT 1");
    assert!(link.send(late).is_err());
    let n: i64 = writer
        .lock()
        .unwrap()
        .session
        .conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_call_for_a_session_not_served_goes_to_its_link() {
    let dir = tempfile::tempdir().unwrap();
    let writer = writer(&dir);
    // Still queued (not begun): its calls wait in the link, in order.
    let link = SessionLink::new(8, (0, 0), BeginRequest::default());
    let (op, _rx) = exec("SELECT 1");
    assert!(call_here(&writer, &link, op).is_err());
}
