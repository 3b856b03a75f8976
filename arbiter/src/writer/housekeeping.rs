//! The writer's housekeeping: pruning idempotency keys past their
//! retention or count.

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
}
