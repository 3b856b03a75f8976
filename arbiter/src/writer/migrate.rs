//! The writer serving a `migrate` request: alone, like a session, so that
//! of any number of callers asking at once each step runs once.

use std::time::Instant;

use scribe_protocol::{Answer, Migration};

use super::run::Writer;
use super::ReplyTo;

impl Writer {
    pub(super) fn migrate(&mut self, list: &[Migration], to: ReplyTo) {
        let started = Instant::now();
        let stats = self.stats.clone();
        let out = crate::migrations::apply(&self.session, list, |seq| {
            stats.commit(seq, 1, 0, started.elapsed());
        });
        // On failure some earlier steps of the call may have committed.
        let version = match &out {
            Ok(report) => Some(report.after),
            Err(_) => crate::migrations::history(&self.session)
                .ok()
                .map(|h| h.last().map_or(0, |r| r.version)),
        };
        if let Some(v) = version {
            self.stats.set_schema_version(v);
        }
        if let Err(e) = &out {
            self.stats.failed(1);
            tracing::warn!(error = %e, "migrate failed");
        }
        self.answer_durably(to, out.map(Answer::Migrated), false);
    }
}
