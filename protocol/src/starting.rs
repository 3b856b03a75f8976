//! An arbiter that holds the lock but serves nobody yet: it is opening the
//! database, or applying its migrations at open (`scribed --migrations`),
//! which may take minutes. Its lock record says so (`starting=<phase>`,
//! and no sockets) until its sockets are bound.
//!
//! Clients wait for it as a write waits behind the writer: up to their
//! own wait, then `Busy` ("database is busy", SQLite's `SQLITE_BUSY`
//! after its busy timeout), naming what it does. Before this record they
//! waited a fixed 3–5 s, spawned an arbiter that lost the lock race, and
//! said "holds the lock but does not answer".

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::paths::Paths;
use crate::wire_error::WriteError;
use crate::{lockfile, reach};

/// What a starting arbiter records while it does it.
pub mod phase {
    /// From the lock taken until it serves, when nothing longer applies.
    pub const OPENING: &str = "opening the database";
    /// Waiting for the arbiter of a file this path named before (see the
    /// arbiter's `walhold`).
    pub const PREVIOUS: &str =
        "waiting for the arbiter of the file that was at this path before to let go of its WAL";

    /// Applying the migrations of `dir` at open.
    pub fn migrating(dir: &std::path::Path) -> String {
        format!("applying the migrations at open from {}", dir.display())
    }
}

/// A starting arbiter, as its lock record describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Starting {
    /// Its pid.
    pub pid: u32,
    /// What it does now.
    pub phase: String,
    /// How long since it took the lock, in whole seconds as recorded
    /// (zero when unknown).
    pub since: Duration,
}

impl Starting {
    /// What a caller is told: who, doing what, for how long.
    pub fn describe(&self) -> String {
        format!(
            "the arbiter (pid {}) is starting: {} (for {} s)",
            self.pid,
            self.phase,
            self.since.as_secs()
        )
    }

    /// The error of a caller that waited `waited` for it to serve.
    pub fn busy(&self, waited: Duration) -> WriteError {
        WriteError::Busy {
            waited_ms: waited.as_millis() as u64,
            behind: format!(
                "nothing yet: the arbiter (pid {}) is still starting, {} (for {} s),",
                self.pid,
                self.phase,
                self.since.as_secs()
            ),
        }
    }
}

/// The arbiter holding `paths.db`'s lock, when its record (written by a
/// user who may write the database) says it is starting.
pub fn starting(paths: &Paths) -> Option<Starting> {
    let info = reach::trusted_record(paths)?;
    let phase = info.starting.filter(|_| info.socket.is_none())?;
    let pid = info.pid?;
    // The record outlives a killed holder: the lock does not.
    if !lockfile::is_held(paths).unwrap_or(false) {
        return None;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let since = info.started.map_or(Duration::ZERO, |s| {
        Duration::from_secs(now.saturating_sub(s))
    });
    Some(Starting { pid, phase, since })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_is_told_who_does_what_and_nothing_was_written() {
        let s = Starting {
            pid: 42,
            phase: phase::migrating(std::path::Path::new("/srv/m")),
            since: Duration::from_secs(75),
        };
        let e = s.busy(Duration::from_millis(5000));
        assert_eq!(e.category(), crate::category::Category::Overloaded);
        let said = e.to_string();
        assert!(said.contains("database is busy"), "{said}");
        assert!(
            said.contains(
                "the arbiter (pid 42) is still starting, applying the migrations at open \
                 from /srv/m (for 75 s)"
            ),
            "{said}"
        );
        assert!(said.contains("5000 ms"), "{said}");
        assert!(said.contains("nothing of it was written"), "{said}");
    }
}
