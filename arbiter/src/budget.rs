//! The per-batch time budget, enforced with SQLite's progress handler: a
//! runaway statement is interrupted, only its batch fails, and the writer
//! carries on.
//!
//! A group committed on the socket thread also runs under a short slice
//! ([`Budget::slice`]): that thread serves every connection, so a batch
//! that outlasts the slice is interrupted there, its group rolled back
//! whole, and the writer thread runs it again under the full budget.
//!
//! A write session's statement also stops when its connection closes
//! ([`Canceller`]): the session is rolled back then, and its statement
//! would otherwise hold the writer until the session's lease ended.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// SQLite virtual-machine steps between two looks at the clock (a look
/// costs tens of nanoseconds; 1000 steps take microseconds).
const STEPS: i32 = 1000;

/// Default time one batch may run.
pub const BATCH_BUDGET: Duration = Duration::from_secs(5);

/// Arms and reads the budget of the batch that is running.
#[derive(Debug)]
pub struct Budget {
    limit: Duration,
    base: Instant,
    /// Microseconds after `base` when the running batch must stop; 0 when
    /// no batch is running (the arbiter's own statements are never cut).
    deadline_us: Arc<AtomicU64>,
    fired: Arc<AtomicBool>,
    /// The session whose statement runs (0: none), and the one whose
    /// connection closed: the handler stops a run when they are the same.
    session: Canceller,
    /// The last run was stopped because its session's connection closed.
    by_cancel: Arc<AtomicBool>,
    /// The end of the socket thread's slice, while a group runs there.
    slice_end: Cell<Option<Instant>>,
    /// A run ended at the slice's end, not its own deadline.
    sliced: Cell<bool>,
}

impl Budget {
    /// Installs the progress handler on `conn`.
    ///
    /// # Errors
    ///
    /// SQLite's error.
    pub fn install(conn: &mut Connection, limit: Duration) -> rusqlite::Result<Budget> {
        let budget = Budget {
            limit,
            base: Instant::now(),
            deadline_us: Arc::new(AtomicU64::new(0)),
            fired: Arc::new(AtomicBool::new(false)),
            session: Canceller::default(),
            by_cancel: Arc::new(AtomicBool::new(false)),
            slice_end: Cell::new(None),
            sliced: Cell::new(false),
        };
        let (deadline, fired, base) = (
            budget.deadline_us.clone(),
            budget.fired.clone(),
            budget.base,
        );
        let (session, by_cancel) = (budget.session.clone(), budget.by_cancel.clone());
        conn.progress_handler(
            STEPS,
            Some(move || {
                let d = deadline.load(Relaxed);
                if d == 0 {
                    return false;
                }
                if session.closed_while_running() {
                    by_cancel.store(true, Relaxed);
                    fired.store(true, Relaxed);
                    return true;
                }
                if base.elapsed().as_micros() as u64 >= d {
                    fired.store(true, Relaxed);
                    true
                } else {
                    false
                }
            }),
        )?;
        Ok(budget)
    }

    /// What the connections' side uses to stop a session's statement
    /// when the session's connection closes.
    pub fn canceller(&self) -> Canceller {
        self.session.clone()
    }

    /// Marks the runs from now on as session `id`'s (0: no session's).
    pub fn for_session(&self, id: u64) {
        self.session.running.store(id, Relaxed);
    }

    /// True (once) when the last run stopped because its session's
    /// connection closed.
    pub fn take_cancelled(&self) -> bool {
        self.by_cancel.swap(false, Relaxed)
    }

    /// The configured limit.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Runs `f` (one batch) under the budget; returns its result and
    /// whether the budget cut it short.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> (T, bool) {
        self.run_until(Instant::now() + self.limit, f)
    }

    /// Runs `f` until `deadline` at most (a write session's statement runs
    /// until the end of the session's lease); returns its result and
    /// whether the deadline cut it short.
    pub fn run_until<T>(&self, deadline: Instant, f: impl FnOnce() -> T) -> (T, bool) {
        self.fired.store(false, Relaxed);
        let slice = self.slice_end.get().filter(|&end| end < deadline);
        let deadline = slice.unwrap_or(deadline);
        let at = deadline
            .saturating_duration_since(self.base)
            .as_micros()
            .max(1) as u64;
        self.deadline_us.store(at, Relaxed);
        let out = f();
        self.deadline_us.store(0, Relaxed);
        let cut = self.fired.swap(false, Relaxed);
        if cut && slice.is_some() {
            self.sliced.set(true);
        }
        (out, cut)
    }

    /// Sets (or with `None` clears) the end of the socket thread's slice:
    /// until cleared, every run ends there at the latest, and
    /// [`Budget::take_sliced`] tells when one did.
    pub fn slice(&self, end: Option<Instant>) {
        self.slice_end.set(end);
        self.sliced.set(false);
    }

    /// Forgets any run's deadline and slice (after a panic in one, which
    /// left them set: the arbiter's own statements, and the writer
    /// thread's batches, must not be cut by a deadline that is not
    /// theirs).
    pub fn reset(&self) {
        self.deadline_us.store(0, Relaxed);
        self.fired.store(false, Relaxed);
        self.slice(None);
    }

    /// True (once) when a run ended at the slice's end: what it ran must
    /// be undone and run again off the socket thread.
    pub fn take_sliced(&self) -> bool {
        self.sliced.replace(false)
    }
}

/// Stops the statement of a write session whose connection closed (see
/// [`Budget::canceller`]). Session ids are never reused, so a mark left
/// for a session that no longer runs stops nothing.
#[derive(Clone, Debug, Default)]
pub struct Canceller {
    running: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
}

impl Canceller {
    /// Session `id`'s connection closed: its running statement, or the
    /// next it starts, stops. A mark that stops the running statement is
    /// not replaced by another session's.
    pub fn cancel(&self, id: u64) {
        let running = self.running.load(Relaxed);
        if running == 0 || self.closed.load(Relaxed) != running {
            self.closed.store(id, Relaxed);
        }
    }

    fn closed_while_running(&self) -> bool {
        let running = self.running.load(Relaxed);
        running != 0 && self.closed.load(Relaxed) == running
    }
}
