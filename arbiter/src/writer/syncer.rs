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
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use scribe_protocol::{Reply, WriteError};
use tracing::error;

use super::ReplyTo;
use crate::stats::Stats;

/// Answers waiting for the next sync.
pub(super) type Held = Vec<(ReplyTo, Reply)>;

/// The running syncer.
#[derive(Debug)]
pub(super) struct Syncer {
    tx: Option<mpsc::Sender<Held>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts syncing the WAL of the database at `db`.
    pub(super) fn start(db: &Path, stats: Arc<Stats>) -> std::io::Result<Syncer> {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let wal = File::open(&wal)?;
        let (tx, rx) = mpsc::channel::<Held>();
        let thread = std::thread::Builder::new()
            .name("scribe-syncer".into())
            .spawn(move || run(&wal, &rx, &stats))?;
        Ok(Syncer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Sends `answers` once the WAL holding their commit is on disk.
    pub(super) fn after_sync(&self, answers: Held) {
        if let Some(tx) = &self.tx {
            if let Err(mpsc::SendError(answers)) = tx.send(answers) {
                fail(answers, "the syncer has stopped");
            }
        }
    }

    /// Waits until every answer handed over has been sent.
    pub(super) fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.finish();
    }
}

fn run(wal: &File, rx: &mpsc::Receiver<Held>, stats: &Stats) {
    while let Ok(mut held) = rx.recv() {
        while let Ok(more) = rx.try_recv() {
            held.extend(more);
        }
        let started = Instant::now();
        match nix::unistd::fdatasync(wal) {
            Ok(()) => {
                stats.synced(started.elapsed());
                for (to, reply) in held {
                    to.send(reply);
                }
            }
            Err(e) => {
                error!(error = %e, "fdatasync of the WAL failed: commits may not survive a crash");
                fail(held, &format!("syncing the WAL to disk failed ({e})"));
            }
        }
    }
}

/// Answers that cannot be confirmed durable: their outcome is unknown.
fn fail(held: Held, why: &str) {
    for (to, reply) in held {
        to.send(match reply {
            Ok(_) => Err(WriteError::Timeout {
                message: format!(
                    "{why}: the write committed but may not survive a crash; the arbiter \
                     cannot confirm it (a retry with the same idempotency key is safe)"
                ),
            }),
            err => err,
        });
    }
}
