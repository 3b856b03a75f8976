//! Every "is this worth another try?" decision, in one place.
//!
//! Retried: `Unavailable` (the arbiter may be restarting), `Timeout` (the
//! outcome is unknown, the connection may be gone: on a new connection,
//! the same idempotency key makes the retry safe),
//! `Overloaded` (after the arbiter's hint), `ShuttingDown` (a new arbiter
//! will be started). Never retried: `Sql`, `Conflict`, `Refused`,
//! `Protocol` — trying again cannot change their answer. Nor is an
//! `Unavailable` while a stopping marker is live: somebody stopped the
//! arbiter on purpose, and waiting out their grace period would look like
//! a hang. Nor one while a start that just failed holds auto-start back
//! (see `scribe_protocol::failed_start`): the next would fail the same way.

use std::time::Duration;

use scribe_protocol::{failed_start, stopmarker, Paths, WriteError};

/// First pause between tries.
const FIRST: Duration = Duration::from_millis(5);
/// Longest pause between tries.
const CAP: Duration = Duration::from_secs(1);

/// What to do after an error.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Give up and return the error.
    GiveUp,
    /// Try again, on a fresh connection when `reconnect`, after at least
    /// `at_least`.
    Retry {
        /// Drop the connection and make a new one (auto-starting).
        reconnect: bool,
        /// The arbiter's own hint, if it gave one.
        at_least: Duration,
    },
}

/// The error of a try that followed one whose outcome is unknown (it may
/// have committed): a refusal to start (`Busy`) says nothing of that
/// earlier try, so it is reported as the unknown outcome it leaves.
pub fn after_unknown(e: WriteError) -> WriteError {
    match e {
        WriteError::Busy { .. } => WriteError::Timeout {
            message: format!(
                "an earlier try's outcome is unknown, and the retry could not start in time \
                 ({e}); the write may or may not have committed (retry it with the same \
                 idempotency key)"
            ),
        },
        other => other,
    }
}

/// The error a write ends in when a try before it may have committed and
/// no later try learned the outcome (the last could not reach the arbiter,
/// or was refused before it started): whatever that last try met, the
/// write may or may not have committed, and only a retry with its key
/// tells. It was reported as the last try's `Unavailable` or `Overloaded`
/// ("nothing was written") for writes that had committed. A definite
/// answer stays as it is (an SQL error: the key was not found, so no
/// earlier try committed).
pub fn still_unknown(last: WriteError, key: Option<&str>) -> WriteError {
    let again = match key {
        Some(k) => format!("retry it with the same idempotency key, {k:?}"),
        None => "it had no idempotency key, so a retry could apply it twice".into(),
    };
    match last {
        WriteError::Timeout { message } => match key {
            Some(k) if !message.contains(k) => WriteError::Timeout {
                message: format!("{message}; its idempotency key is {k:?}"),
            },
            _ => WriteError::Timeout { message },
        },
        e @ (WriteError::Unavailable { .. }
        | WriteError::Overloaded { .. }
        | WriteError::ShuttingDown
        | WriteError::Busy { .. }) => WriteError::Timeout {
            message: format!(
                "the write may or may not have committed: an earlier try's answer was lost, \
                 and the last try met this: {e}; {again}"
            ),
        },
        other => other,
    }
}

/// Decides what to do after `e`.
pub fn verdict(e: &WriteError, paths: &Paths) -> Verdict {
    match e {
        WriteError::Unavailable { .. }
            if stopmarker::read_active(&paths.stop_marker).is_some()
                || failed_start::holding_back(paths).is_some() =>
        {
            Verdict::GiveUp
        }
        WriteError::Unavailable { .. } | WriteError::ShuttingDown => Verdict::Retry {
            reconnect: true,
            at_least: Duration::ZERO,
        },
        WriteError::Timeout { .. } => Verdict::Retry {
            reconnect: true,
            at_least: Duration::ZERO,
        },
        WriteError::Overloaded { retry_after_ms, .. } => Verdict::Retry {
            reconnect: false,
            at_least: Duration::from_millis(*retry_after_ms),
        },
        // The caller's own limit on the wait passed: waiting on is what
        // it asked not to do.
        // A session that ended can only be run again as a whole: the
        // transaction helpers do that, a single call cannot.
        WriteError::Busy { .. }
        | WriteError::Conflict { .. }
        | WriteError::Sql { .. }
        | WriteError::RolledBack { .. }
        | WriteError::Refused { .. }
        | WriteError::Protocol { .. }
        | WriteError::Expired { .. } => Verdict::GiveUp,
    }
}

/// The longest `retry_for` honoured (a larger one would overflow an
/// `Instant`).
const RETRY_CAP: Duration = Duration::from_secs(365 * 24 * 3600);

/// When retrying for `retry_for` from now ends.
pub fn deadline(retry_for: Duration) -> std::time::Instant {
    deadline_from(std::time::Instant::now(), retry_for)
}

/// When retrying for `retry_for` from `now` ends.
pub fn deadline_from(now: std::time::Instant, retry_for: Duration) -> std::time::Instant {
    now.checked_add(retry_for.min(RETRY_CAP)).unwrap_or(now)
}

/// Whether a pause of `pause` from now would end at or past `deadline` (a
/// huge pause, from a huge `retry_after_ms`, cannot overflow the clock:
/// it is past the deadline either way).
pub fn past(deadline: std::time::Instant, pause: Duration) -> bool {
    std::time::Instant::now()
        .checked_add(pause)
        .is_none_or(|at| at >= deadline)
}

/// The error a caller gets when retrying stops: an `Unavailable` while
/// the arbiter is stopped on purpose says so (the connection's own failure
/// alone would not tell why nothing was retried).
pub fn given_up(e: WriteError, paths: &Paths) -> WriteError {
    match e {
        WriteError::Unavailable { reason } if !reason.contains("auto-start") => {
            match stopmarker::read_active(&paths.stop_marker) {
                Some(marker) => WriteError::Unavailable {
                    reason: format!("{reason}; {}", marker.describe()),
                },
                None => WriteError::Unavailable { reason },
            }
        }
        other => other,
    }
}

/// Whether `e` is worth another try of the same call (whatever the stop
/// marker says).
pub fn is_transient(e: &WriteError) -> bool {
    e.category().is_retryable()
}

/// Capped exponential backoff with jitter.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// The pause before the next try: between half and all of the current
    /// step (jitter spreads callers that failed together), then the step
    /// doubles up to the cap.
    pub fn pause(&mut self, at_least: Duration) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(CAP);
        let jitter = 0.5 + 0.5 * unit_random();
        step.mul_f64(jitter).max(at_least)
    }
}

/// A number in [0, 1) that differs between calls and processes.
fn unit_random() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// A fresh idempotency key: unique across processes and time, and
/// ordered by time (microseconds first, fixed width), so the keys in the
/// arbiter's key table read in the order they were made. A per-process
/// random tag keeps two hosts' or two runs' keys apart.
pub fn new_key() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static TAG: OnceLock<u64> = OnceLock::new();
    let tag = *TAG.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    // The pid is read every time: a forked child keeps the tag and the
    // counter, and only its pid tells its keys from its parent's.
    let pid = std::process::id();
    // `micros.pid.tag.n` in hex, without the formatting machinery (which
    // was two thirds of this function, and this function 9% of a
    // pipelining client's CPU).
    let mut key = String::with_capacity(16 + 1 + 8 + 1 + 16 + 1 + 16);
    push_hex(&mut key, micros, 16);
    key.push('.');
    push_hex(&mut key, u64::from(pid), 1);
    key.push('.');
    push_hex(&mut key, tag, 1);
    key.push('.');
    push_hex(&mut key, n, 1);
    key
}

/// Appends `v` in lowercase hex, with at least `width` digits (as
/// `{v:0width$x}` would).
fn push_hex(out: &mut String, mut v: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut start = digits.len();
    while start > 0 && (v != 0 || digits.len() - start < width.max(1)) {
        start -= 1;
        digits[start] = DIGITS[(v & 0xf) as usize];
        v >>= 4;
    }
    // Hex digits are ASCII: the check cannot fail.
    out.push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
