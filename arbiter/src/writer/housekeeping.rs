//! The writer's housekeeping: pruning idempotency keys past their
//! retention or count, and the WAL's last checkpoint at exit.

use std::path::Path;
use std::time::Instant;

use tracing::{error, info, warn};

use super::run::Writer;
use crate::requests;
use crate::walrestore::{self, Restored};

impl Writer {
    /// Prunes keys past their age (at most every `prune_every`) and past
    /// `--max-keys`.
    pub(super) fn maybe_prune(&mut self) {
        if self
            .last_prune
            .is_some_and(|t| t.elapsed() < self.prune_every)
        {
            return;
        }
        self.last_prune = Some(Instant::now());
        let s = &self.session;
        let pruned = s
            .guard
            .trusted(|| requests::prune_aged(&s.conn, &s.own, &s.keys, self.retention.window));
        match pruned {
            Ok(0) => {}
            Ok(n) => info!(pruned = n, "pruned idempotency keys past their retention"),
            Err(e) => {
                self.session.reset();
                warn!(error = %e, "pruning idempotency keys failed");
            }
        }
        // Under load, keys past the count go a step at a time with the
        // commits; idle, the last partial step goes now.
        let excess = s.keys.len().saturating_sub(self.retention.max_keys);
        if excess > 0 {
            let pruned = s.guard.trusted(|| {
                requests::in_transaction(&s.conn, &s.own, &s.keys, || {
                    requests::prune_oldest(&s.conn, &s.own, &s.keys, excess)
                })
            });
            if let Err(e) = pruned {
                s.reset();
                warn!(error = %e, "pruning idempotency keys failed");
            }
        }
    }

    /// Truncates the WAL so the file is complete on its own after exit;
    /// a WAL taken from its path under the writer is first copied back
    /// (what a reader's old snapshot keeps the checkpoint from copying
    /// would otherwise vanish with this process). When it cannot be (a
    /// full disk), the writer waits until the copy or a checkpoint of it
    /// all succeeds.
    pub(super) fn checkpoint(&self) {
        let mut saved = self.restore_wal();
        let mut waited = Instant::now();
        loop {
            let done = self.session.guard.trusted(|| {
                self.session
                    .conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                        r.get::<_, i64>(0)
                    })
            });
            match done {
                Ok(0) => return info!("WAL checkpointed"),
                Ok(busy) if saved => {
                    return warn!(busy, "WAL checkpoint incomplete (readers hold it)")
                }
                Err(e) if saved => return warn!(error = %e, "WAL checkpoint failed"),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "WAL checkpoint failed; trying again"),
            }
            // Acknowledged commits live only in the file this process
            // holds: try the copy again, and wait for readers to leave or
            // room to be made (a full disk).
            if waited.elapsed() >= LOST_WAL_NOTE {
                error!(
                    "waiting for readers to end their snapshots, or for room on the disk: \
                     the WAL's last commits are only in the file this arbiter holds"
                );
                waited = Instant::now();
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            saved = self.restore_wal();
        }
    }

    /// Puts back the WAL the writer holds if its path no longer names it;
    /// true unless that was needed and failed.
    fn restore_wal(&self) -> bool {
        let (Some(db), Some(held)) = (self.session.conn.path(), self.session.wal_pages.held())
        else {
            return true;
        };
        // A database moved or deleted has no WAL to put back where it was.
        if !self.session.file.1.is_at(Path::new(db)) {
            return true;
        }
        match walrestore::restore(Path::new(db), held) {
            Ok(Restored::NotNeeded) => true,
            Ok(Restored::Copied(bytes, aside)) => {
                match aside {
                    Some(aside) => warn!(
                        bytes,
                        aside = %aside.display(),
                        "the WAL was replaced: the one this arbiter wrote is back at its path, \
                         the other set aside"
                    ),
                    None => warn!(bytes, "the WAL was taken from its path: copied back"),
                }
                true
            }
            Err(e) => {
                error!(error = %e, "the WAL taken from its path could not be copied back");
                false
            }
        }
    }
}

/// How often a writer waiting with a WAL it could not put back says so.
const LOST_WAL_NOTE: std::time::Duration = std::time::Duration::from_secs(10);
