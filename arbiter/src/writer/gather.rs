//! How long the writer waits for more writes before a group commits.

use std::time::{Duration, Instant};

/// How long to wait for more writes before a group commits.
///
/// Every caller answered by one commit usually writes again within a
/// round trip. Committing as soon as the first of them is back splits
/// them into two half groups that alternate; waiting a little (a fraction
/// of a commit) for about as many as the recent groups held keeps the
/// groups whole, and pays one commit's fixed cost (its pages, its locks)
/// for all of them. The wait ends the moment enough have come.
#[derive(Debug, Default)]
pub(super) struct Gather {
    /// The size recent groups reached.
    pub(super) target: usize,
    /// How long a recent commit took.
    commit: Duration,
}

/// The longest a group waits for more writes.
const MAX_GATHER: Duration = Duration::from_micros(200);

impl Gather {
    /// When to stop waiting for a group that has `have` writes (`None`:
    /// do not wait).
    pub(super) fn until(&self, have: usize) -> Option<Instant> {
        (have > 0 && have < self.target).then(|| Instant::now() + (self.commit / 3).min(MAX_GATHER))
    }

    /// A group of `n` took `took`.
    pub(super) fn committed(&mut self, n: usize, took: Duration) {
        // Grows at once, shrinks slowly (a caller that went away stops
        // being waited for after a few groups).
        self.target = if n >= self.target {
            n
        } else {
            self.target - (self.target - n).div_ceil(4)
        };
        self.commit = (self.commit * 3 + took) / 4;
    }
}
