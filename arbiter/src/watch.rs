//! What the arbiter watches while it serves, besides its sockets: the
//! writer thread, idleness, the housekeeping tick, and the files that
//! make it what it is (the database file and the lock file's record).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use scribe_protocol::lockfile::InstanceLock;
use tracing::{error, info, warn};

use crate::fileid::FileId;
use crate::state::{Shared, StopReason};

/// How often the database file and the lock record are checked (each
/// check wakes an idle arbiter; see `socket::CHECK_EVERY`).
pub const FILES_EVERY: Duration = Duration::from_secs(1);

/// Offers the writer a moment for housekeeping, every `prune_every`.
pub async fn tick(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(shared.config.prune_every).await;
        shared.writer.tick();
    }
}

/// How often memory the allocator holds free is given back.
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Gives the memory freed since back to the system, every [`TRIM_EVERY`]:
/// the allocator keeps what large answers took (helper 87: 1.9 GB stayed
/// held for minutes after the callers of 250 answers of 7 MB had gone).
pub async fn trim() {
    loop {
        tokio::time::sleep(TRIM_EVERY).await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only walks the allocator's own free lists.
        unsafe {
            nix::libc::malloc_trim(0);
        }
    }
}

/// Ends the arbiter if the writer thread stops on its own (a panic):
/// serving on without it would answer `ShuttingDown` for ever.
pub async fn writer(shared: Arc<Shared>) {
    shared.writer.closed().await;
    if !shared.writer.is_stopping() {
        error!("the writer thread stopped unexpectedly");
        shared.begin_shutdown(StopReason::WriterFailed);
    }
}

/// Stops the arbiter after `idle` without any call and with nothing queued.
pub async fn idle(shared: Arc<Shared>, idle: Duration) {
    let tick = (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    loop {
        tokio::time::sleep(tick).await;
        let now = shared.started.elapsed().as_millis() as u64;
        let quiet = now.saturating_sub(shared.last_call_ms.load(Ordering::Relaxed));
        if quiet >= idle.as_millis() as u64
            && shared.in_flight.load(Ordering::Acquire) == 0
            && shared.writer.depth() == 0
        {
            info!(idle_ms = quiet, "idle: stopping");
            shared.begin_shutdown(StopReason::Idle);
            return;
        }
    }
}

/// True while the database path names the file the arbiter opened; when
/// it does not, stops the arbiter (see [`files`]). Also asked at each
/// accepted connection: a program that deleted the database and connects
/// again at once (a test's set-up) met the old arbiter for up to a
/// second, its writes refused as "moved", its reads of a file that was
/// no longer there.
pub fn db_in_place(shared: &Shared) -> bool {
    let path = &shared.config.paths.db;
    // A path that cannot be read now (EACCES, a stale handle) is not known
    // to have changed: this runs at every connection.
    if !shared.db_file.is_gone_from(path) {
        return true;
    }
    let (reason, what, then) = if shared.db_file.is_deleted_from(path) {
        (
            StopReason::Deleted,
            "deleted",
            "and the next caller starts a new one on a new file",
        )
    } else if path.exists() {
        // A file renamed over it: a restore. The next caller starts an
        // arbiter on it, which waits for this one to let go of the WAL.
        (
            StopReason::Replaced,
            "replaced",
            "and the next caller starts a new one on the file there now",
        )
    } else {
        (
            StopReason::Moved,
            "moved away",
            "rather than write where nobody reads",
        )
    };
    error!(path = %path.display(), "the database file was {what}: stopping");
    let _ = shared.fault.set(format!(
        "the database file {} was {what} while the arbiter ran; the arbiter stopped {then}",
        path.display()
    ));
    shared.begin_shutdown(reason);
    false
}

/// Keeps the lock file's record in place, and stops the arbiter when its
/// database path no longer names the file it opened (moved, replaced or
/// deleted): every write from then on would go where nobody reads. Or
/// when the WAL's path no longer names the WAL it writes (deleted by hand
/// or by a cleaner): commits went on into the deleted file, readers failed
/// with `disk I/O error`, and a crash lost every commit since the last
/// checkpoint. Stopping copies the WAL the writer still holds open back
/// to its path (`walrestore`), then checkpoints it, as every stop does.
/// (A WAL renamed away is seen here too: its path names no file.)
pub async fn files(shared: Arc<Shared>, lock: Arc<InstanceLock>) {
    let wal_path = shared.config.paths.wal();
    // The WAL the writer has open: the first one seen (SQLite makes it at
    // the first transaction, and never replaces it while a connection is
    // open; the arbiter's are open as long as it serves).
    let mut wal = FileId::of(&wal_path).ok();
    loop {
        tokio::time::sleep(FILES_EVERY).await;
        // The database first: once it is elsewhere, the record beside its
        // path is the next arbiter's (one may start on a file there now
        // while this one stops), not to be written over.
        if !db_in_place(&shared) {
            return;
        }
        if lock.keep_record() {
            warn!(path = %shared.config.paths.lock.display(), "the lock file was removed or changed; wrote it back");
        }
        // After the database's own check: a database moved with its WAL
        // is a move (its marker keeps auto-start off), not a lost WAL.
        match wal {
            None => wal = FileId::of(&wal_path).ok(),
            Some(id) if id.is_gone_from(&wal_path) => {
                let why = format!(
                    "the WAL file {} was deleted or replaced while the arbiter ran; the \
                     arbiter stopped (its log says what became of the WAL it held), and the \
                     next caller starts a new one",
                    wal_path.display()
                );
                error!(path = %wal_path.display(), "the WAL file was deleted or replaced: stopping");
                let _ = shared.fault.set(why);
                shared.begin_shutdown(StopReason::WalLost);
                return;
            }
            Some(_) => {}
        }
    }
}
