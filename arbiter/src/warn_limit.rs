//! At most one log line a second for each kind of refusal and uid: a
//! caller looping on refused connections must not flood the log beside
//! the database, and one noisy uid must not hide another. Each line
//! counts the refusals of its kind and uid left out since the last.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Keys kept at most; past it the map starts again (a few lines more).
const MAX_KEYS: usize = 1024;

/// A kind of refusal and the uid refused.
type Key = (&'static str, u32);

/// The refusals logged and left out, per kind and uid.
#[derive(Debug)]
pub struct WarnLimit {
    born: Instant,
    /// Per (kind, uid): when last logged (ms since `born`, offset by a
    /// second so that the first always is) and how many were left out.
    seen: Mutex<HashMap<Key, (u64, u64)>>,
}

impl Default for WarnLimit {
    fn default() -> Self {
        WarnLimit {
            born: Instant::now(),
            seen: Mutex::new(HashMap::new()),
        }
    }
}

impl WarnLimit {
    /// `Some(left out since the last line)` when this refusal is to be
    /// logged, `None` when it is only counted.
    pub fn check(&self, kind: &'static str, uid: u32) -> Option<u64> {
        self.check_at(kind, uid, self.born.elapsed().as_millis() as u64 + 1000)
    }

    fn check_at(&self, kind: &'static str, uid: u32, now_ms: u64) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_KEYS && !seen.contains_key(&(kind, uid)) {
            seen.clear();
        }
        let (last, left_out) = seen.entry((kind, uid)).or_insert((0, 0));
        if now_ms.saturating_sub(*last) >= 1000 {
            let n = *left_out;
            (*last, *left_out) = (now_ms, 0);
            Some(n)
        } else {
            *left_out += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_per_kind_and_uid_with_the_count_left_out() {
        let w = WarnLimit::default();
        assert_eq!(w.check_at("uid", 7, 1000), Some(0));
        assert_eq!(w.check_at("uid", 7, 1100), None);
        assert_eq!(w.check_at("uid", 7, 1200), None);
        // Another uid, or another kind, is not hidden by the first.
        assert_eq!(w.check_at("uid", 8, 1200), Some(0));
        assert_eq!(w.check_at("full", 7, 1200), Some(0));
        assert_eq!(w.check_at("uid", 7, 2000), Some(2));
        assert_eq!(w.check_at("uid", 7, 2001), None);
    }
}
