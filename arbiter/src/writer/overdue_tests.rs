//! A caller's limit on its wait for the writer: what waits behind a
//! session past its limit is answered `Busy` and never runs, in order,
//! the rest kept; an item with a limit queued behind a session wakes the
//! thread that watches it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use scribe_protocol::{BeginRequest, Reply, Statement, WriteError};
use tokio::sync::oneshot;

use super::link::{SessionLink, SessionOp};
use super::overdue::Wait;
use super::session_tests::{enqueue, serving, writer};
use super::{Item, Job, ReplyTo};

fn write(wait_ms: Option<u64>) -> (Item, oneshot::Receiver<Reply>) {
    let (tx, rx) = oneshot::channel();
    let batch = scribe_protocol::Batch::one(Statement::new("SELECT 1"));
    let job = Job {
        work: crate::group::Work {
            batch,
            fingerprint: 0,
            as_given: None,
        },
        reply: ReplyTo::Oneshot(tx),
        _room: None,
        wait: Wait::from_ms(wait_ms),
    };
    (Item::Write(job), rx)
}

fn busy(rx: &mut oneshot::Receiver<Reply>) -> Option<String> {
    match rx.try_recv() {
        Ok(Err(WriteError::Busy { behind, .. })) => Some(behind),
        _ => None,
    }
}

#[test]
fn what_waited_past_its_limit_is_refused_and_the_rest_keeps_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let (stage, rx) = writer(&dir);
    let _held = serving(&stage, 1);
    let (late, mut late_rx) = write(Some(0));
    let (patient, mut patient_rx) = write(None);
    // A begin past its limit, its first call sent with it.
    let link = SessionLink::new(
        2,
        (0, 0),
        BeginRequest {
            wait_ms: Some(0),
            ..BeginRequest::default()
        },
    );
    let (call, mut call_rx) = oneshot::channel();
    link.send(SessionOp::Exec(
        Statement::new("SELECT 1"),
        ReplyTo::Oneshot(call),
    ))
    .unwrap();
    let (began, mut began_rx) = oneshot::channel();
    let begin = Item::Begin(link, ReplyTo::Oneshot(began));
    let (later, mut later_rx) = write(Some(60_000));
    enqueue(&stage, &rx, vec![late, patient, begin, later]);
    rx.send(super::Msg::Tick).unwrap();

    let next = stage.writer().lock().unwrap().expire_overdue(&rx, &stage);

    let behind = busy(&mut late_rx).expect("the late write is refused");
    assert!(behind.contains("session 1"), "{behind}");
    assert!(busy(&mut began_rx).is_some(), "the late begin is refused");
    assert!(
        matches!(call_rx.try_recv(), Ok(Err(WriteError::Expired { .. }))),
        "the call sent with it never runs"
    );
    assert!(patient_rx.try_recv().is_err(), "no limit: still waiting");
    assert!(later_rx.try_recv().is_err(), "its limit is to come");
    let w = stage.writer().lock().unwrap();
    assert_eq!(w.waiting.len(), 2);
    assert!(w.waiting[0].wait().is_none(), "in their order");
    assert!(next.is_some_and(|at| at > Instant::now()), "the next limit");
    assert_eq!(stage.queued.load(Ordering::Acquire), 2);
    assert!(w.tick_missed, "the housekeeping tick is kept for later");
}

#[test]
fn a_write_with_a_limit_queued_behind_a_session_wakes_its_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let (stage, rx) = writer(&dir);
    let held = serving(&stage, 1);
    let (item, _answer) = write(Some(60_000));
    stage.push(item);
    // Not committed here (a session holds the writer): queued, and the
    // session's link nudged, so the watcher looks now, not at the lease.
    stage.flush(&rx);
    let started = Instant::now();
    let within = Duration::from_secs(20);
    assert!(held.next(started + within).is_none());
    assert!(started.elapsed() < within, "woken by the nudge");
    assert!(matches!(rx.try_recv(), Some(super::Msg::Jobs(_))));
}
