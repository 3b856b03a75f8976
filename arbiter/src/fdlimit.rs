//! The arbiter's descriptor limit, and the connections it leaves room for.
//!
//! Every connection holds a descriptor (an HTTP one a second for its
//! hang-up watch, while one is free: `peers` counts both). A service's default soft limit
//! (1024 on many systems) is below what `--max-connections` allows, and an
//! arbiter out of descriptors cannot even accept a caller to tell it so:
//! new callers waited for a hello answer that never came, for as long as
//! idle pooled connections stayed (minutes). So the soft limit is raised to the hard
//! one, and the connection cap is lowered to what the limit holds, with
//! room left to accept and refuse one more (`Overloaded`, naming the cap).

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use tracing::{info, warn};

/// Descriptors kept for the database, its WAL and `-shm` on each of the
/// arbiter's connections, the log, the lock and the listeners (about 32),
/// and the callers being refused at once (64 of each kind, see `peers`).
const RESERVE: u64 = 160;

/// Raises the soft descriptor limit to the hard one (a side effect the
/// whole process shares); returns the connections it leaves room for
/// (`None` when it cannot be read).
pub fn raise() -> Option<usize> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let mut limit = soft;
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                info!(from = soft, to = hard, "raised the open-files limit");
                limit = hard;
            }
            Err(e) => warn!(error = %e, soft, hard, "cannot raise the open-files limit"),
        }
    }
    Some(usize::try_from(limit.saturating_sub(RESERVE)).unwrap_or(usize::MAX))
}

/// What the descriptor limit leaves for connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    /// `--max-connections`, lowered to what the limit holds.
    pub connections: usize,
    /// Descriptors connections may hold in all: one each, and a second
    /// for an HTTP connection's hang-up watch while one is free (see
    /// `peers`; counting two for every connection would halve what RPC
    /// callers may hold).
    pub descriptors: usize,
}

/// The room for connections under `max_connections` and the descriptor
/// limit (after raising it: see [`raise`]).
pub fn cap(max_connections: usize) -> Room {
    let Some(room) = raise() else {
        return Room {
            connections: max_connections,
            descriptors: usize::MAX,
        };
    };
    let mut connections = max_connections;
    if room < max_connections {
        connections = room.max(1);
        warn!(
            max_connections,
            capped = connections,
            "the open-files limit holds fewer connections than --max-connections: capped"
        );
    }
    Room {
        connections,
        descriptors: room.max(1),
    }
}
