//! Helpers for the in-process tests of the writer and the group commit.

use std::sync::Arc;
use std::time::Duration;

use scribe_protocol::Answer;

use super::reply::Answers;
use super::run::Writer;
use super::session::SessionLimits;
use super::{Job, Settings};
use crate::group::{Outcome, Session, Work};
use crate::requests::Retention;
use crate::stats::Stats;

/// Settings for in-process tests of the writer: answers sent from the
/// calling thread, no syncer.
pub(crate) fn test_settings() -> Settings {
    Settings {
        capacity: 16,
        max_group: 1024,
        retention: Retention::default(),
        prune_every: Duration::from_secs(60),
        limits: scribe_protocol::limits::Limits::default(),
        durable: false,
        answers: Answers::Here,
        sessions: SessionLimits {
            idle: Duration::from_secs(1),
            total: Duration::from_secs(5),
        },
    }
}

/// Commits `batches` as one group on `session`, on this thread (for the
/// in-process tests of the group commit); returns each batch's outcome.
pub(crate) fn commit_as_one_group(
    session: Session,
    batches: Vec<scribe_protocol::Batch>,
) -> (Session, Vec<Outcome>) {
    let mut writer = Writer::new(session, Arc::new(Stats::new(0)), &test_settings(), None);
    let mut answers = Vec::new();
    let jobs = batches
        .into_iter()
        .map(|batch| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            answers.push(rx);
            let fingerprint = batch.fingerprint();
            Job {
                work: Work {
                    batch,
                    fingerprint,
                    as_given: None,
                },
                reply: super::ReplyTo::Oneshot(tx),
                _room: None,
                wait: None,
            }
        })
        .collect();
    let _ = writer.commit_group(jobs, false);
    let outcomes = answers
        .into_iter()
        .map(|mut a| match a.try_recv().expect("every job is answered") {
            Ok(Answer::Receipt(r)) => Ok(r),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        })
        .collect();
    (writer.session, outcomes)
}
