//! The checkpointer: moves WAL frames into the database file on its own
//! connection and thread, so the writer never stalls on a checkpoint.
//!
//! SQLite's automatic checkpoint runs inside the COMMIT that crosses the
//! threshold, on the writer's thread: every caller waiting for that group
//! (and the next) pays for copying pages and an fsync. Here the writer's
//! automatic checkpoint is off (unless the operator set
//! `wal_autocheckpoint` themselves) and this thread runs `PASSIVE`
//! checkpoints — which never block the writer or readers — whenever there
//! are new commits.
//!
//! Under a steady stream of writes that alone never lets the WAL start
//! over: SQLite resets it only when a write begins with every frame
//! already copied, and the writer keeps appending while the checkpointer
//! copies. So the writer also finishes the job itself, at the end of the
//! COMMIT that takes the WAL past [`RESET_PAGES`] (SQLite's WAL hook, before
//! that group is answered): by then the checkpointer has copied nearly
//! everything, the writer's own `PASSIVE` pass copies the last few frames,
//! and its next transaction starts the WAL over. A reader's long
//! snapshot can still stop a reset; `status` shows the WAL size so that is
//! visible.
//!
//! An idle arbiter leaves this thread asleep: once every frame is copied it
//! parks until the writer's next commit wakes it (see [`WalPages`]), rather
//! than looking every few milliseconds for as long as the arbiter runs.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tracing::{debug, warn};

use crate::config::BUSY_TIMEOUT;
use crate::stats::Stats;

/// WAL size (pages) past which the writer completes a checkpoint itself.
pub const RESET_PAGES: i32 = 2000;

/// The WAL's size after the writer's latest commit, and the checkpointer's
/// bell: a commit wakes the checkpointer only when it sleeps with nothing
/// to copy, so a busy writer pays one load per commit, not a wake-up.
#[derive(Debug, Default)]
pub struct WalPages {
    pages: AtomicI64,
    asleep: AtomicBool,
    sleeper: OnceLock<Thread>,
}

impl WalPages {
    /// Frames in the WAL after the latest commit.
    pub fn get(&self) -> i64 {
        self.pages.load(Ordering::SeqCst)
    }

    fn set(&self, pages: i64) {
        self.pages.store(pages, Ordering::SeqCst);
        // SeqCst on both sides: either the sleeper sees these pages before
        // it parks, or this sees it asleep and wakes it.
        if self.asleep.load(Ordering::SeqCst) && self.asleep.swap(false, Ordering::SeqCst) {
            if let Some(t) = self.sleeper.get() {
                t.unpark();
            }
        }
    }

    /// Parks the calling thread until a commit changes the WAL from
    /// `seen` pages, `until` passes (if given), or `stop` is set (its
    /// setter unparks).
    fn sleep(&self, seen: i64, until: Option<Instant>, stop: &AtomicBool) {
        self.asleep.store(true, Ordering::SeqCst);
        while self.asleep.load(Ordering::SeqCst)
            && self.get() == seen
            && !stop.load(Ordering::Acquire)
        {
            match until {
                Some(t) => {
                    let left = t.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    std::thread::park_timeout(left);
                }
                None => std::thread::park(),
            }
        }
        self.asleep.store(false, Ordering::SeqCst);
    }
}

/// Turns off SQLite's automatic checkpoint on the writer and replaces it
/// with the reset described above.
///
/// # Errors
///
/// SQLite's error.
pub fn install_reset_hook(conn: &mut Connection, wal_pages: Arc<WalPages>) -> rusqlite::Result<()> {
    conn.wal_hook(Some(
        move |wal: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
            wal_pages.set(i64::from(pages));
            if pages >= RESET_PAGES {
                // Busy when the checkpointer holds the lock: try next commit.
                let _ = wal.checkpoint_v2(rusqlite::wal::CheckpointMode::PASSIVE);
            }
            Ok(())
        },
    ))
}

/// How often the checkpointer looks at the WAL.
const EVERY: Duration = Duration::from_millis(5);
/// New WAL pages that make a checkpoint worth its syncs: a page written
/// many times between two checkpoints is copied once (checkpointing after
/// every commit copied, and synced, every version of the hot pages).
pub const CHECKPOINT_PAGES: i64 = 500;
/// Without commits for this long, what is left is checkpointed anyway.
const QUIET: Duration = Duration::from_millis(200);

/// A running checkpointer; dropping it stops the thread.
#[derive(Debug)]
pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing `db`, following the writer's commits in
    /// `stats`.
    ///
    /// # Errors
    ///
    /// When the connection cannot be opened.
    pub fn start(
        db: &std::path::Path,
        stats: Arc<Stats>,
        wal_pages: Arc<WalPages>,
    ) -> Result<Checkpointer, rusqlite::Error> {
        let conn = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("scribe-checkpoint".into())
            .spawn(move || {
                let _ = wal_pages.sleeper.set(std::thread::current());
                run(&conn, &stats, &wal_pages, &flag);
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Checkpointer {
    /// Stops the thread and waits for it (its checkpoint, if one runs, is
    /// PASSIVE and short).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(conn: &Connection, stats: &Stats, wal_pages: &WalPages, stop: &AtomicBool) {
    let mut copied = 0i64;
    // The WAL size at the last checkpoint that copied nothing (a reader's
    // snapshot pins the frames), and when: tried again once the WAL grows,
    // or a quiet period later, not every few milliseconds.
    let mut stuck: Option<(i64, Instant)> = None;
    let (mut seen, mut changed) = (stats.seq(), Instant::now());
    while !stop.load(Ordering::Acquire) {
        let pages = wal_pages.get();
        if pages < copied {
            // The WAL started over.
            copied = 0;
        }
        if pages <= copied {
            // Nothing to copy: asleep until the next commit.
            wal_pages.sleep(pages, None, stop);
            (seen, changed) = (stats.seq(), Instant::now());
            continue;
        }
        if let Some((_, when)) = stuck.filter(|&(at, _)| at == pages) {
            // Pinned, and no commit since: the next try is a quiet
            // period after the last (sooner if a commit comes).
            wal_pages.sleep(pages, Some(when + QUIET), stop);
            if when.elapsed() < QUIET {
                continue;
            }
        } else {
            std::thread::sleep(EVERY);
        }
        let pages = wal_pages.get();
        let seq = stats.seq();
        if seq != seen {
            (seen, changed) = (seq, Instant::now());
        }
        let due =
            pages - copied >= CHECKPOINT_PAGES || (pages > copied && changed.elapsed() >= QUIET);
        if !due {
            continue;
        }
        let done: Result<(i64, i64, i64), _> =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            });
        match done {
            Ok((_, log, done)) => {
                debug!(log, copied = done, "checkpoint");
                stuck = (done.max(0) <= copied && done < log).then(|| (pages, Instant::now()));
                copied = done.max(0);
            }
            Err(e) => {
                warn!(error = %e, "checkpoint failed");
                // Tried again a quiet period later, as when pinned (a WAL
                // deleted under the arbiter failed every 5 ms until the
                // watch stopped it).
                stuck = Some((pages, Instant::now()));
            }
        }
    }
}
