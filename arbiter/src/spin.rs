//! The socket thread stays awake for a moment after each call (`--spin`),
//! polling its sockets, because a caller writing one at a time sends its
//! next request a few µs after its answer and waking a sleeping thread
//! costs more than that wait (see [`scribe_protocol::spin`] for the rule
//! and its back-off).
//!
//! A task on the runtime does it: while the window since the latest call
//! (or since the runtime's latest work on it) is open it yields, and each
//! yield has the runtime poll its sockets without sleeping; between
//! yields `sched_yield` lets a runnable process on this CPU go first (and
//! when one does, the poll stops: the machine is busy). Once the window
//! passes without a call it sleeps until a lone call past its back-off
//! rings it.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use scribe_protocol::spin::{self, Backoff};
use tokio::sync::Notify;

/// A yield that takes longer than this (ns) ran the runtime's other work.
const WORKED_NS: u64 = 10_000;

/// Calls in a row from one process that make polling pay.
const STREAK: u32 = 4;

/// The caller of a call made while two or more others of its connection
/// are in flight: never a streak (measured with 16 in flight in one
/// process, polling between its groups cost 2–3 µs more CPU per write on
/// each side and a fifth of the throughput).
pub const NOT_ALONE: i32 = i32::MIN;

/// The socket thread's polling after calls.
#[derive(Debug)]
pub struct Spin {
    window_ns: u64,
    origin: Instant,
    /// Nanoseconds since `origin` of the latest call.
    last_ns: AtomicU64,
    /// Calls so far: a poll that saw this move was a hit…
    calls: AtomicU64,
    /// …when the latest [`STREAK`] calls came from one process. Callers
    /// taking turns keep the thread busy without polling, and polling
    /// between them answers each sooner, so groups shrink (measured at 8
    /// processes: 4.0 -> 3.3 writes per commit, and 2–3 µs more CPU per
    /// write on each side). A call from another process ends a poll.
    caller: AtomicI32,
    streak: AtomicU32,
    /// The call that may wake the poller again (the back-off's skips,
    /// counted in calls).
    wake_at: AtomicU64,
    asleep: AtomicBool,
    bell: Notify,
}

impl Spin {
    /// Polls for `window` after each call (zero: never); times are
    /// counted from `origin`.
    pub fn new(window: Duration, origin: Instant) -> Spin {
        Spin {
            window_ns: ns(window),
            origin,
            last_ns: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            caller: AtomicI32::new(0),
            streak: AtomicU32::new(0),
            wake_at: AtomicU64::new(0),
            asleep: AtomicBool::new(false),
            bell: Notify::new(),
        }
    }

    fn now_ns(&self) -> u64 {
        ns(self.origin.elapsed())
    }

    /// Whether a call from `pid`, the `calls`th, may wake the poller:
    /// only a lone call past the back-off does (waking it for every call
    /// costs more than its polls save).
    fn wakes(&self, pid: i32, calls: u64) -> bool {
        pid != NOT_ALONE && calls >= self.wake_at.load(Ordering::Relaxed)
    }

    /// Notes a call from process `pid` ([`NOT_ALONE`]: with others of
    /// its connection in flight) at `now` (since the origin): the window
    /// starts again.
    pub fn touch(&self, pid: i32, now: Duration) {
        if self.window_ns == 0 {
            return;
        }
        if self.caller.swap(pid, Ordering::Relaxed) == pid && pid != NOT_ALONE {
            self.streak.fetch_add(1, Ordering::Relaxed);
        } else {
            self.streak.store(0, Ordering::Relaxed);
        }
        self.last_ns.store(ns(now), Ordering::SeqCst);
        let calls = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.wakes(pid, calls)
            && self.asleep.load(Ordering::SeqCst)
            && self.asleep.swap(false, Ordering::SeqCst)
        {
            self.bell.notify_one();
        }
    }

    /// The polling task (returns at once when the window is zero).
    pub async fn run(self: std::sync::Arc<Self>) {
        if self.window_ns == 0 {
            return;
        }
        let mut backoff = Backoff::default();
        let mut seen = self.calls.load(Ordering::SeqCst);
        loop {
            // Asleep until a lone call past the back-off rings (or until
            // one came while this was deciding to sleep).
            self.asleep.store(true, Ordering::SeqCst);
            let calls = self.calls.load(Ordering::SeqCst);
            let ready = calls != seen && self.wakes(self.caller.load(Ordering::Relaxed), calls);
            if !ready || !self.asleep.swap(false, Ordering::SeqCst) {
                // Rung (or about to be: a call cleared `asleep` first).
                self.bell.notified().await;
            }
            seen = self.calls.load(Ordering::SeqCst);
            let caller = self.caller.load(Ordering::Relaxed);
            if caller == NOT_ALONE {
                continue;
            }
            let mut contended = false;
            // The window runs from the latest call, or from the end of the
            // runtime's latest work (a yield that came back late: the
            // call's commit and answer ran meanwhile), whichever is later:
            // the caller's next request comes a while after its answer.
            let mut worked = 0u64;
            while !contended
                && self.caller.load(Ordering::Relaxed) == caller
                && self
                    .now_ns()
                    .saturating_sub(self.last_ns.load(Ordering::SeqCst).max(worked))
                    < self.window_ns
            {
                let before = self.now_ns();
                tokio::task::yield_now().await;
                let after = self.now_ns();
                if after - before > WORKED_NS {
                    worked = after;
                }
                contended = spin::yield_cpu();
            }
            let now = self.calls.load(Ordering::SeqCst);
            if !contended {
                backoff.record(
                    now != seen
                        && self.caller.load(Ordering::Relaxed) == caller
                        && self.streak.load(Ordering::Relaxed) >= STREAK,
                );
                let skips = u64::from(backoff.take_skips());
                self.wake_at.store(now + skips, Ordering::Relaxed);
            }
            seen = now;
        }
    }
}

/// `d` in nanoseconds (saturating: 584 years).
fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
