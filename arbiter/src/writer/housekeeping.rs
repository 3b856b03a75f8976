//! The writer's housekeeping: pruning idempotency keys past their
//! retention or count, and the WAL's last checkpoint at exit.

use std::time::Instant;

use tracing::{info, warn};

use super::run::Writer;
use crate::requests;

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
        let pruned = self.session.guard.trusted(|| {
            requests::prune_aged(&self.session.conn, &self.session.own, self.retention.window)
        });
        match pruned {
            Ok(0) => {}
            Ok(n) => {
                self.session.keys = self.session.keys.saturating_sub(n);
                info!(pruned = n, "pruned idempotency keys past their retention");
            }
            Err(e) => {
                self.session.reset();
                warn!(error = %e, "pruning idempotency keys failed");
            }
        }
        // Under load, keys past the count go a step at a time with the
        // commits; idle, the last partial step goes now.
        let excess = self.session.keys.saturating_sub(self.retention.max_keys);
        if excess > 0 {
            let pruned = self.session.guard.trusted(|| {
                let tx = self.session.conn.unchecked_transaction()?;
                let n = requests::prune_oldest(&self.session.conn, &self.session.own, excess)?;
                tx.commit().map(|()| n)
            });
            match pruned {
                Ok(n) => self.session.keys = self.session.keys.saturating_sub(n),
                Err(e) => {
                    self.session.reset();
                    warn!(error = %e, "pruning idempotency keys failed");
                }
            }
        }
    }

    /// Truncates the WAL so the file is complete on its own after exit.
    pub(super) fn checkpoint(&self) {
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
