//! A session's calls on the adapters' thread: they run there only when no
//! earlier call of the session still waits in its link, so a call never
//! overtakes one before it; a session ending there hands the writer to the
//! next begin, and leaves anything else to the writer thread, told to look.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scribe_protocol::{Answer, BeginRequest, Paths, Reply, Statement};
use tokio::sync::oneshot;

use super::link::{SessionLink, SessionOp};
use super::queue::Queue;
use super::run::Writer;
use super::session::call_here;
use super::stage::Stage;
use super::test_support::test_settings;
use super::{Msg, ReplyTo, SessionLimits, Settings};
use crate::config::Config;
use crate::stats::Stats;

/// A writer with no thread, its stage, and an empty queue.
pub(super) fn writer(dir: &tempfile::TempDir) -> (Arc<Stage>, Queue<Msg>) {
    let paths = Paths::for_db(&dir.path().join("s.db"), None).unwrap();
    let (session, _) = crate::db::open_writer(&Config::new(paths)).unwrap();
    // Leases longer than any stall of a loaded machine between two calls.
    let settings = Settings {
        sessions: SessionLimits {
            idle: Duration::from_secs(300),
            total: Duration::from_secs(300),
        },
        ..test_settings()
    };
    let writer = Writer::new(session, Arc::new(Stats::new(0)), &settings, None);
    (Stage::new(Arc::new(Mutex::new(writer))), Queue::default())
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
    let (stage, rx) = writer(&dir);
    let writer = stage.writer();
    let link = SessionLink::new(7, (0, 0), BeginRequest::default());
    let (began, mut began_rx) = oneshot::channel();
    assert!(writer
        .lock()
        .unwrap()
        .begin_serving(link.clone(), ReplyTo::Oneshot(began), false));
    assert!(matches!(began_rx.try_recv(), Ok(Ok(Answer::Began(_)))));

    // A call that went through the link (the writer was busy) and has not
    // run yet...
    let (create, mut create_rx) = exec("CREATE TABLE t(x)");
    link.send(create).unwrap();
    // ... is not overtaken by the next, though the writer is free now.
    let (insert, mut insert_rx) = exec("INSERT INTO t VALUES (1)");
    let insert = call_here(&stage, &rx, &link, insert).expect_err("it would overtake");
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
        &stage,
        &rx,
        &link,
        SessionOp::Commit(None, false, ReplyTo::Oneshot(tx)),
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
    let (stage, rx) = writer(&dir);
    // Still queued (not begun): its calls wait in the link, in order.
    let link = SessionLink::new(8, (0, 0), BeginRequest::default());
    let (op, _rx) = exec("SELECT 1");
    assert!(call_here(&stage, &rx, &link, op).is_err());
}

/// A session served by `stage`'s writer (begun as the writer thread would).
/// Queues `items` as the adapters do: counted on the stage, then sent.
pub(super) fn enqueue(stage: &Stage, rx: &Queue<Msg>, items: Vec<super::Item>) {
    stage
        .queued
        .fetch_add(items.len(), std::sync::atomic::Ordering::AcqRel);
    rx.send(Msg::Jobs(items)).unwrap();
}

pub(super) fn serving(stage: &Stage, id: u64) -> Arc<SessionLink> {
    let link = SessionLink::new(id, (0, 0), BeginRequest::default());
    let (began, _) = oneshot::channel();
    assert!(stage.writer().lock().unwrap().begin_serving(
        link.clone(),
        ReplyTo::Oneshot(began),
        false
    ));
    link
}

fn commit_here(stage: &Stage, rx: &Queue<Msg>, link: &SessionLink) {
    let (tx, mut commit_rx) = oneshot::channel();
    call_here(
        stage,
        rx,
        link,
        SessionOp::Commit(None, false, ReplyTo::Oneshot(tx)),
    )
    .unwrap();
    assert!(matches!(commit_rx.try_recv(), Ok(Ok(Answer::Receipt(_)))));
}

#[test]
fn a_session_ending_here_hands_the_writer_to_the_next_begin_with_its_calls() {
    let dir = tempfile::tempdir().unwrap();
    let (stage, rx) = writer(&dir);
    let first = serving(&stage, 1);
    // Queued behind it: another session's begin, its first call already
    // in its link (sent with the begin).
    let next = SessionLink::new(2, (0, 0), BeginRequest::default());
    let (began, mut began_rx) = oneshot::channel();
    let (create, mut create_rx) = exec("CREATE TABLE h(x)");
    next.send(create).unwrap();
    enqueue(
        &stage,
        &rx,
        vec![super::Item::Begin(next.clone(), ReplyTo::Oneshot(began))],
    );

    commit_here(&stage, &rx, &first);
    // The next session began here, and its call ran, both answered here.
    assert!(matches!(began_rx.try_recv(), Ok(Ok(Answer::Began(_)))));
    assert!(executed(&mut create_rx));
    assert!(stage.writer().lock().unwrap().serves(2));
    assert_eq!(next.pending(), 0);
    assert_eq!(stage.queued.load(std::sync::atomic::Ordering::Acquire), 0);
    // The writer thread is told to watch its lease.
    assert!(matches!(rx.try_recv(), Some(Msg::Attend)));
}

#[test]
fn writes_taken_from_the_queue_at_a_hand_over_are_left_for_the_writer_thread_which_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let (stage, rx) = writer(&dir);
    let first = serving(&stage, 1);
    let (tx, _answer) = oneshot::channel();
    let batch = scribe_protocol::Batch::one(Statement::new("SELECT 1"));
    enqueue(
        &stage,
        &rx,
        vec![super::Item::Write(super::Job {
            work: crate::group::Work {
                batch,
                fingerprint: 0,
                as_given: None,
            },
            reply: ReplyTo::Oneshot(tx),
            _room: None,
            wait: None,
        })],
    );

    commit_here(&stage, &rx, &first);
    // Not a begin: nothing began here; the write waits for the writer
    // thread, which may have found the queue empty meanwhile, so it is
    // told to look again.
    let w = stage.writer().lock().unwrap();
    assert!(w.served().is_none());
    assert!(!w.idle(), "the write is the writer thread's to serve");
    drop(w);
    assert!(matches!(rx.try_recv(), Some(Msg::Attend)));
}

#[test]
fn a_housekeeping_tick_met_at_a_hand_over_goes_back_to_the_writer_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (stage, rx) = writer(&dir);
    let first = serving(&stage, 1);
    rx.send(Msg::Tick).unwrap();
    commit_here(&stage, &rx, &first);
    // Pruning keys is the writer thread's: the tick is still there for it.
    assert!(matches!(rx.try_recv(), Some(Msg::Tick)));
    assert!(rx.try_recv().is_none());
}

#[test]
fn one_call_hands_the_writer_over_once_however_many_sessions_were_sent_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (stage, rx) = writer(&dir);
    let first = serving(&stage, 1);
    // Two sessions queued, each with its commit sent along with its begin.
    let mut commits = Vec::new();
    let mut items = Vec::new();
    for id in [2, 3] {
        let link = SessionLink::new(id, (0, 0), BeginRequest::default());
        let (tx, rx) = oneshot::channel();
        link.send(SessionOp::Commit(None, false, ReplyTo::Oneshot(tx)))
            .unwrap();
        commits.push(rx);
        let (began, _) = oneshot::channel();
        items.push(super::Item::Begin(link, ReplyTo::Oneshot(began)));
    }
    enqueue(&stage, &rx, items);

    commit_here(&stage, &rx, &first);
    // The second session ran whole here; the third is the writer thread's,
    // which is told to look.
    assert!(matches!(commits[0].try_recv(), Ok(Ok(Answer::Receipt(_)))));
    assert!(commits[1].try_recv().is_err(), "not run on this call");
    let w = stage.writer().lock().unwrap();
    assert!(w.served().is_none());
    assert!(!w.idle(), "the third begin waits for the writer thread");
    drop(w);
    assert_eq!(stage.queued.load(std::sync::atomic::Ordering::Acquire), 1);
    let mut told = false;
    while let Some(msg) = rx.try_recv() {
        told |= matches!(msg, Msg::Attend);
    }
    assert!(told);
}
