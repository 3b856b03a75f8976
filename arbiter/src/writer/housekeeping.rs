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
    /// a WAL deleted under the writer is first copied back (what a
    /// reader's old snapshot keeps the checkpoint from copying would
    /// otherwise vanish with this process).
    pub(super) fn checkpoint(&self) {
        if let Some(db) = self.session.conn.path() {
            match walrestore::restore(Path::new(db)) {
                Ok(Restored::NotNeeded) => {}
                Ok(Restored::Copied(bytes)) => {
                    warn!(bytes, "the deleted WAL was copied back to its path")
                }
                Ok(Restored::PathTaken) => {
                    error!("the WAL was deleted and another put in its place: left as it is")
                }
                Err(e) => error!(error = %e, "the deleted WAL could not be copied back"),
            }
        }
        let done = self.session.guard.trusted(|| {
            self.session
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                })
        });
        match done {
            Ok(0) => info!("WAL checkpointed"),
            Ok(busy) => warn!(busy, "WAL checkpoint incomplete (readers hold it)"),
            Err(e) => warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}
