//! When to poll for the other side's next frame instead of sleeping: the
//! rule both the arbiter's socket thread and the client follow.
//!
//! A process that sleeps in `epoll_wait` and is woken by a frame pays for
//! the wake-up, and on a virtual machine whose idle vCPU halts that is
//! most of the cost of a small call: tens of µs of CPU on each side,
//! through the hypervisor. A caller writing one at a time sends its next
//! request a few µs after its answer, and the answer to a small write
//! comes a few tens of µs after the request, so each side polls (between
//! `sched_yield`s, so that a runnable process on its CPU goes first) for a
//! short window before it sleeps.
//!
//! A poll stops as soon as a `sched_yield` runs another process (see
//! [`yield_cpu`]): the CPU is wanted, and polling on would take it from
//! the processes it waits for. A poll that ends without the frame is a
//! window of CPU spent for nothing (a miss), and after one the next polls
//! are skipped: 1 wait, then 2, 4, … up to [`MAX_SKIP`] after consecutive
//! misses; one hit resets it. Where frames never come that soon (a busy
//! machine, `--synchronous full`'s fsync, a caller that thinks between
//! writes) polling costs one window in every [`MAX_SKIP`] waits.
//!
//! What counts as a miss differs by side. A client's poll that another
//! process interrupted is a miss (callers are many; on a busy machine
//! they would take CPU from the arbiter). The arbiter's is not (it is one
//! process, and it stopped polling anyway); but its poll is a hit only
//! while the calls come from one process, several in a row: callers
//! taking turns keep it busy without polling, and polling between them
//! answers each sooner, so its groups shrink.

use std::time::Duration;

/// The window when nothing else is said: a small write's answer and a
/// one-at-a-time caller's next request both come well within it.
pub const DEFAULT_WINDOW: Duration = Duration::from_micros(100);

/// Environment variable that sets the window in µs (`0`: never poll),
/// read by the clients and by `scribed` (whose `--spin` wins).
pub const ENV_SPIN_US: &str = "SCRIBE_SPIN_US";

/// Waits skipped at most after consecutive misses.
pub const MAX_SKIP: u32 = 256;

/// A `sched_yield` that takes longer than this ran another process: the
/// CPU is wanted, and a poll that sees it stops.
pub const CONTENDED: Duration = Duration::from_micros(20);

/// Gives a runnable process on this CPU the CPU; true when one took it
/// (the yield took longer than [`CONTENDED`]).
pub fn yield_cpu() -> bool {
    let start = std::time::Instant::now();
    std::thread::yield_now();
    start.elapsed() > CONTENDED
}

/// The window from [`ENV_SPIN_US`], else [`DEFAULT_WINDOW`].
pub fn window_from_env() -> Duration {
    std::env::var(ENV_SPIN_US)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_WINDOW, Duration::from_micros)
}

/// Whether the next wait polls first, from how the last polls ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    /// Waits to skip after the latest miss (doubling per miss).
    penalty: u32,
    /// Waits still to skip.
    left: u32,
}

impl Backoff {
    /// True when this wait should poll first; counts a skipped one.
    pub fn should_poll(&mut self) -> bool {
        if self.left == 0 {
            return true;
        }
        self.left -= 1;
        false
    }

    /// Takes the waits still to skip, for a side that counts them itself
    /// (the arbiter sleeps through that many calls).
    pub fn take_skips(&mut self) -> u32 {
        std::mem::take(&mut self.left)
    }

    /// Records how a poll ended: `hit` when the frame came within it.
    pub fn record(&mut self, hit: bool) {
        if hit {
            *self = Backoff::default();
        } else {
            self.penalty = (self.penalty * 2).clamp(1, MAX_SKIP);
            self.left = self.penalty;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polls_in(b: &mut Backoff, waits: u32) -> u32 {
        (0..waits).filter(|_| b.should_poll()).count() as u32
    }

    #[test]
    fn hits_keep_polling() {
        let mut b = Backoff::default();
        for _ in 0..100 {
            assert!(b.should_poll());
            b.record(true);
        }
    }

    #[test]
    fn misses_skip_1_then_2_then_4_up_to_the_cap() {
        let mut b = Backoff::default();
        let mut skipped = Vec::new();
        assert!(b.should_poll());
        for _ in 0..11 {
            b.record(false);
            let mut n = 0;
            while !b.should_poll() {
                n += 1;
            }
            // The wait that polls again (and misses again).
            skipped.push(n);
        }
        assert_eq!(skipped, [1, 2, 4, 8, 16, 32, 64, 128, 256, 256, 256]);
    }

    #[test]
    fn under_constant_misses_one_wait_in_257_polls() {
        let mut b = Backoff::default();
        let mut polls = 0;
        for _ in 0..257 * 100 {
            if b.should_poll() {
                polls += 1;
                b.record(false);
            }
        }
        // The first few polls come sooner, while the skip doubles up.
        assert!((100..=110).contains(&polls), "{polls} polls");
    }

    #[test]
    fn skips_taken_are_not_skipped_again_but_the_penalty_stays() {
        let mut b = Backoff::default();
        b.record(false);
        b.record(false);
        assert_eq!(b.take_skips(), 2);
        assert!(b.should_poll());
        b.record(false);
        assert_eq!(b.take_skips(), 4);
    }

    #[test]
    fn one_hit_resets_the_skip() {
        let mut b = Backoff::default();
        for _ in 0..10 {
            b.should_poll();
            b.record(false);
        }
        b.record(true);
        assert_eq!(polls_in(&mut b, 5), 5);
    }
}
