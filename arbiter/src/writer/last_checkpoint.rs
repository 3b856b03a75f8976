//! The writer's last checkpoint at exit, and what it does first with a
//! WAL or database taken from its path under the arbiter.

use std::path::Path;
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use super::run::Writer;
use crate::walrestore::{self, Restored, TakenAway};

/// How often a writer waiting with a WAL it could not put back says so.
const NOTE_EVERY: Duration = Duration::from_secs(10);
/// Longest it waits: past it, what is left is named in the log (the held
/// descriptor, to copy from `/proc/PID/fd`) and the arbiter exits, rather
/// than make `scribe stop` wait for ever.
const WAIT_AT_MOST: Duration = Duration::from_secs(600);

/// Where the WAL the writer holds stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    /// At its path, or nothing is held: a checkpoint is all there is to do.
    Safe,
    /// Taken from its path, and the copy back failed for now (a full disk):
    /// tried again, and nothing is checkpointed meanwhile.
    Retry,
    /// Taken from its path, and the copy back cannot succeed by waiting (a
    /// read-only file system, no `/proc`): only a whole checkpoint saves
    /// its last commits.
    Stuck,
}

impl Writer {
    /// Truncates the WAL so the file is complete on its own after exit.
    /// A WAL taken from its path under the writer is first copied back
    /// (what a reader's old snapshot keeps the checkpoint from copying
    /// would otherwise vanish with this process); when the disk is full,
    /// the writer waits until the copy succeeds, and when the copy cannot
    /// succeed, until a whole checkpoint does. The
    /// `-wal` and `-shm` of a database deleted under it are removed after,
    /// and those of one replaced are taken from the path.
    pub(super) fn checkpoint(&self) {
        let mut held = self.restore_wal();
        let (started, mut noted) = (Instant::now(), Instant::now());
        loop {
            // While the copy waits for room, no checkpoint: one the full
            // disk cuts short leaves the database file half written, with
            // the only WAL that mends it in this process (a kill then lost
            // the whole file, not only the last commits).
            let done = if held == Held::Retry {
                Ok(-1)
            } else {
                self.session.guard.trusted(|| {
                    self.session
                        .conn
                        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                            r.get::<_, i64>(0)
                        })
                })
            };
            match done {
                Ok(0) => {
                    info!("WAL checkpointed");
                    break;
                }
                Ok(busy) if held == Held::Safe => {
                    warn!(busy, "WAL checkpoint incomplete (readers hold it)");
                    break;
                }
                Err(e) if held == Held::Safe => {
                    warn!(error = %e, "WAL checkpoint failed");
                    break;
                }
                // A full disk may clear; other failures will not.
                Err(e) if e.sqlite_error_code() != Some(rusqlite::ErrorCode::DiskFull) => {
                    error!(error = %e, "WAL checkpoint failed, and the WAL is not at its path");
                    break;
                }
                Ok(_) | Err(_) => {}
            }
            if started.elapsed() >= WAIT_AT_MOST {
                error!(
                    waited_s = WAIT_AT_MOST.as_secs(),
                    pid = std::process::id(),
                    "gave up waiting: the WAL's last commits are only in the file this arbiter \
                     holds, which goes with it (copy it from /proc/PID/fd before it exits)"
                );
                break;
            }
            if noted.elapsed() >= NOTE_EVERY {
                error!(
                    "waiting for readers to end their snapshots, or for room on the disk: the \
                     WAL's last commits are only in the file this arbiter holds"
                );
                noted = Instant::now();
            }
            // A copy tried writes the whole WAL until the disk is full:
            // once a second.
            let pause = if held == Held::Retry { 1000 } else { 100 };
            std::thread::sleep(Duration::from_millis(pause));
            if held == Held::Retry {
                held = self.restore_wal();
            }
        }
        self.forget_deleted();
    }

    /// Puts back the WAL the writer holds if its path no longer names it.
    fn restore_wal(&self) -> Held {
        let (Some(db), Some(wal)) = (self.session.conn.path(), self.session.companions.wal) else {
            return Held::Safe;
        };
        // A database moved or deleted has no WAL to put back where it was.
        if !self.session.file.1.is_at(Path::new(db)) {
            return Held::Safe;
        }
        match walrestore::restore(Path::new(db), wal) {
            Ok(Restored::NotNeeded) => Held::Safe,
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
                Held::Safe
            }
            Err(e) => {
                error!(error = %e, "the WAL taken from its path could not be copied back");
                let full = [nix::libc::ENOSPC, nix::libc::EDQUOT];
                if e.raw_os_error().is_some_and(|n| full.contains(&n)) {
                    Held::Retry
                } else {
                    Held::Stuck
                }
            }
        }
    }

    /// Removes the `-wal` and `-shm` this arbiter opened when the database
    /// they belong to was deleted (see `walrestore::Companions::remove`).
    fn forget_deleted(&self) {
        let (path, id) = &self.session.file;
        if id.is_deleted_from(path) {
            self.session.companions.remove(path);
            info!("the database was deleted: removed its -wal and -shm");
        } else if !id.is_at(path) && path.exists() {
            // Replaced: its WAL and -shm at the path are not the file's
            // there now (see `walhold`). A database only moved away keeps
            // them at the path: its file may need them (a checkpoint cut
            // short leaves it half written), and moved back it finds them.
            match self.session.companions.set_aside(path) {
                TakenAway::Aside(aside) => warn!(
                    aside = %aside.display(),
                    "the database was replaced, and readers kept the WAL from being emptied: \
                     set it aside (it belongs to the file that was there)"
                ),
                TakenAway::Removed => info!("the database was replaced: removed its -wal and -shm"),
                // A reset: the files there are the new database's already.
                TakenAway::Nothing => {}
            }
        }
    }
}
