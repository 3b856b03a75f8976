//! The syncer: makes commits durable before their answers go out, beside
//! the writer instead of inside its COMMIT.
//!
//! The writer's connection runs `synchronous=NORMAL`: a COMMIT appends the
//! group's frames to the WAL and returns without waiting for the disk.
//! With `--synchronous full` the writer hands the group's answers here;
//! this thread runs `fdatasync` on the WAL and then sends every answer it
//! was handed before the sync began. One sync covers every commit made
//! before it started, so while it runs the writer goes on committing the
//! next groups, and their answers ride on the next sync. An acknowledged
//! write is on disk exactly as with SQLite's own `synchronous=FULL`: its
//! frames, and the WAL header, were written before the sync that covers
//! it (a checkpoint syncs the WAL before copying frames out of it).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use scribe_protocol::WriteError;
use tracing::error;

use crate::stats::Stats;

use super::queue::Queue;
use super::reply::{Answers, Held};

/// The running syncer.
#[derive(Debug)]
pub(super) struct Syncer {
    queue: Arc<Queue<Held>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts syncing the WAL of the database at `db`.
    pub(super) fn start(db: &Path, stats: Arc<Stats>, answers: Answers) -> std::io::Result<Syncer> {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let wal = File::open(&wal)?;
        let queue = Arc::new(Queue::<Held>::default());
        let rx = queue.clone();
        let thread = std::thread::Builder::new()
            .name("scribe-syncer".into())
            .spawn(move || run(&wal, &rx, &stats, &answers))?;
        Ok(Syncer {
            queue,
            thread: Some(thread),
        })
    }

    /// Sends `answers` once the WAL holding their commit is on disk.
    pub(super) fn after_sync(&self, answers: Held) {
        // An empty hand-over is the end (see `finish`): none is sent.
        if answers.is_empty() {
            return;
        }
        if let Err(answers) = self.queue.send(answers) {
            for (to, reply) in fail(answers, "the syncer has stopped") {
                to.send(reply);
            }
        }
    }

    /// Waits until every answer handed over has been sent.
    pub(super) fn finish(&mut self) {
        if let Some(t) = self.thread.take() {
            // An empty hand-over asks the thread to end after the rest.
            let _ = self.queue.send(Vec::new());
            let _ = t.join();
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.finish();
    }
}

fn run(wal: &File, rx: &Queue<Held>, stats: &Stats, answers: &Answers) {
    // A sync starts as soon as there is a commit to cover, with every
    // commit queued by then. Waiting a little for the callers the last
    // sync released (to cover more in one) made fewer, larger syncs and
    // less throughput: the disk had room for the smaller ones, and the
    // wait was on every caller's path (see BENCHMARKS.md, "Tried").
    let mut ending = false;
    while !ending {
        let Some(mut held) = rx.recv(None) else {
            break;
        };
        ending |= held.is_empty();
        while let Some(more) = rx.try_recv() {
            ending |= more.is_empty();
            held.extend(more);
        }
        if held.is_empty() {
            continue;
        }
        let started = Instant::now();
        match nix::unistd::fdatasync(wal) {
            Ok(()) => {
                stats.synced(started.elapsed());
                answers.send(held);
            }
            Err(e) => {
                error!(error = %e, "fdatasync of the WAL failed: commits may not survive a crash");
                answers.send(fail(held, &format!("syncing the WAL to disk failed ({e})")));
            }
        }
    }
}

/// Answers that cannot be confirmed durable: their outcome is unknown.
fn fail(held: Held, why: &str) -> Held {
    held.into_iter()
        .map(|(to, reply)| {
            let reply = match reply {
                Ok(_) => Err(WriteError::Timeout {
                    message: format!(
                        "{why}: the write committed but may not survive a crash; the arbiter \
                         cannot confirm it (a retry with the same idempotency key is safe)"
                    ),
                }),
                err => err,
            };
            (to, reply)
        })
        .collect()
}
