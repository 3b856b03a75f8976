//! The writer thread: the only owner of the read-write connection.
//!
//! A bounded queue feeds it. It takes everything waiting (up to a limit),
//! opens one `BEGIN IMMEDIATE`, runs each batch in its own savepoint (a
//! failing batch rolls back alone), commits once, and only then answers
//! every caller of the group. While it commits, the RPC side keeps reading
//! requests, which form the next group: no timer, no wait when idle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use rusqlite::Connection;
use scribe_protocol::{Batch, Receipt, StatementResult, WriteError};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::db::META_TABLE;
use crate::exec::{run_batch, sql_error};
use crate::stats::Stats;

/// One queued write and where to send its answer.
struct Job {
    batch: Batch,
    reply: oneshot::Sender<Result<Receipt, WriteError>>,
}

enum Msg {
    Write(Job),
    /// Finish what is queued before this, then exit.
    Stop,
}

/// A cloneable handle to the writer's queue.
#[derive(Clone, Debug)]
pub struct WriterHandle {
    tx: mpsc::Sender<Msg>,
    capacity: usize,
    stopping: Arc<AtomicBool>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Write(_) => "Write",
            Msg::Stop => "Stop",
        })
    }
}

impl WriterHandle {
    /// Queues a batch and waits for its answer.
    ///
    /// # Errors
    ///
    /// `Refused` over a limit, `Overloaded` when the queue is full,
    /// `ShuttingDown` once a stop began, else the batch's own outcome.
    pub async fn submit(&self, batch: Batch) -> Result<Receipt, WriteError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(WriteError::ShuttingDown);
        }
        batch.check()?;
        let (reply, answer) = oneshot::channel();
        match self.tx.try_send(Msg::Write(Job { batch, reply })) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let queued = self.depth();
                return Err(WriteError::Overloaded {
                    capacity: self.capacity as u64,
                    retry_after_ms: self.stats.retry_after_ms(queued),
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(WriteError::ShuttingDown),
        }
        // A dropped reply means the writer exited before this job: it was
        // not committed.
        answer.await.unwrap_or(Err(WriteError::ShuttingDown))
    }

    /// Writes waiting in the queue.
    pub fn depth(&self) -> u64 {
        (self.capacity - self.tx.capacity()) as u64
    }

    /// Capacity of the queue.
    pub fn capacity(&self) -> u64 {
        self.capacity as u64
    }

    /// True once the writer thread has exited (its queue is closed).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// True once a stop began.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Stops taking writes and asks the writer to finish the queue and
    /// exit. Returns how many writes were queued at that moment.
    pub async fn stop(&self) -> u64 {
        let first = !self.stopping.swap(true, Ordering::AcqRel);
        let queued = self.depth();
        if first {
            // Waits for room: the stop goes behind every queued write.
            let _ = self.tx.send(Msg::Stop).await;
        }
        queued
    }
}

/// Starts the writer thread on `conn`, whose last commit is `seq`.
pub fn spawn(
    conn: Connection,
    capacity: usize,
    max_group: usize,
    stats: Arc<Stats>,
) -> std::io::Result<(WriterHandle, JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(capacity);
    let handle = WriterHandle {
        tx,
        capacity,
        stopping: Arc::new(AtomicBool::new(false)),
        stats: stats.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("scribe-writer".into())
        .spawn(move || Writer { conn, stats }.run(rx, max_group))?;
    Ok((handle, thread))
}

struct Writer {
    conn: Connection,
    stats: Arc<Stats>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Msg>, max_group: usize) {
        let mut group: Vec<Job> = Vec::with_capacity(max_group);
        let mut stop = false;
        while !stop {
            match rx.blocking_recv() {
                Some(Msg::Write(job)) => group.push(job),
                Some(Msg::Stop) | None => stop = true,
            }
            while !stop && group.len() < max_group {
                match rx.try_recv() {
                    Ok(Msg::Write(job)) => group.push(job),
                    Ok(Msg::Stop) => stop = true,
                    Err(_) => break,
                }
            }
            if !group.is_empty() {
                self.commit_group(&mut group);
            }
        }
        // Anything that slipped in behind the stop was never run.
        rx.close();
        while let Ok(msg) = rx.try_recv() {
            if let Msg::Write(job) = msg {
                let _ = job.reply.send(Err(WriteError::ShuttingDown));
            }
        }
        self.checkpoint();
    }

    /// Commits one group and answers its callers.
    fn commit_group(&mut self, group: &mut Vec<Job>) {
        let started = Instant::now();
        loop {
            match self.try_group(group) {
                Ok(Some((seq, outcomes))) => {
                    let took = started.elapsed();
                    let ok = outcomes.iter().filter(|o| o.is_ok()).count() as u64;
                    let failed = outcomes.len() as u64 - ok;
                    if ok > 0 {
                        self.stats.commit(seq, ok, failed, took);
                    } else {
                        self.stats.failed(failed);
                    }
                    debug!(seq, ok, failed, took_us = took.as_micros() as u64, "group");
                    for (job, outcome) in group.drain(..).zip(outcomes) {
                        let _ = job.reply.send(outcome.map(|results| Receipt {
                            seq,
                            results,
                            replayed: false,
                        }));
                    }
                    return;
                }
                Ok(None) => continue,
                Err(e) => {
                    warn!(error = %e, batches = group.len(), "group failed");
                    self.stats.error(e.to_string());
                    self.stats.failed(group.len() as u64);
                    for job in group.drain(..) {
                        let _ = job.reply.send(Err(e.clone()));
                    }
                    return;
                }
            }
        }
    }

    /// One attempt at a group. `Ok(None)` means SQLite rolled back the
    /// whole transaction because of one batch (e.g. disk full): that batch
    /// was answered and removed, and the rest must run again.
    #[allow(clippy::type_complexity)]
    fn try_group(
        &mut self,
        group: &mut Vec<Job>,
    ) -> Result<Option<(u64, Vec<Result<Vec<StatementResult>, WriteError>>)>, WriteError> {
        let conn = &self.conn;
        let commit_err = |e| {
            let mut w = sql_error(0, e);
            if let WriteError::Sql { statement, .. } = &mut w {
                *statement = None;
            }
            w
        };
        conn.prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
            .map_err(commit_err)?;
        let mut outcomes = Vec::with_capacity(group.len());
        for i in 0..group.len() {
            exec_cached(conn, "SAVEPOINT scribe_batch").map_err(commit_err)?;
            let outcome = run_batch(conn, &group[i].batch);
            if let Err(e) = &outcome {
                if conn.is_autocommit() {
                    // SQLite ended the transaction itself: earlier batches
                    // of this group are undone too, so answer this one and
                    // run the others again.
                    let job = group.remove(i);
                    self.stats.failed(1);
                    let _ = job.reply.send(Err(e.clone()));
                    return Ok(None);
                }
            }
            if outcome.is_err() {
                exec_cached(conn, "ROLLBACK TO scribe_batch").map_err(commit_err)?;
            }
            exec_cached(conn, "RELEASE scribe_batch").map_err(commit_err)?;
            outcomes.push(outcome);
        }
        if outcomes.iter().all(Result::is_err) {
            exec_cached(conn, "ROLLBACK").map_err(commit_err)?;
            return Ok(Some((self.stats.seq(), outcomes)));
        }
        let seq = self.stats.seq() + 1;
        let bumped = conn
            .prepare_cached(&format!(
                "UPDATE {META_TABLE} SET value = ?1 WHERE key = 'seq'"
            ))
            .and_then(|mut s| s.execute([seq as i64]));
        if let Err(e) = bumped.and_then(|_| exec_cached(conn, "COMMIT")) {
            let _ = exec_cached(conn, "ROLLBACK");
            return Err(commit_err(e));
        }
        Ok(Some((seq, outcomes)))
    }

    /// Truncates the WAL so the file is complete on its own after exit.
    fn checkpoint(&self) {
        match self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            }) {
            Ok(0) => info!("WAL checkpointed"),
            Ok(busy) => warn!(busy, "WAL checkpoint incomplete (readers hold it)"),
            Err(e) => warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}

fn exec_cached(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}
