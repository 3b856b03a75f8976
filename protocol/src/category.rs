//! Error categories: what a caller should do about an error.

use std::fmt;

/// The category of every error a caller can get. Each has its own CLI exit
/// code, so scripts can tell "try again later" from "your SQL is wrong".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Category {
    /// No arbiter answered and none could be started.
    Unavailable,
    /// The deadline passed while waiting for the reply; the write may or may
    /// not have committed (retry with the same idempotency key).
    Timeout,
    /// The arbiter cannot take the request now: its queue is full, or the
    /// request waited past its own `wait_ms` for the writer. Nothing was
    /// written.
    Overloaded,
    /// The arbiter is draining before it exits.
    ShuttingDown,
    /// An expectation was not met; nothing was written.
    Conflict,
    /// SQLite rejected a statement; nothing was written.
    Sql,
    /// The request is not allowed (authorizer, size limit, peer).
    Refused,
    /// Version mismatch or malformed exchange.
    Protocol,
    /// A write session ended without a commit (its lease lapsed, its
    /// connection ended); nothing of it was written. Run the whole
    /// transaction again.
    Expired,
}

impl Category {
    /// Every category, in exit-code order.
    pub const ALL: [Category; 9] = [
        Category::Unavailable,
        Category::Timeout,
        Category::Overloaded,
        Category::ShuttingDown,
        Category::Conflict,
        Category::Sql,
        Category::Refused,
        Category::Protocol,
        Category::Expired,
    ];

    /// The `scribe` CLI's exit code for this category (0 is success, 1 an
    /// unexpected local failure, 2 a usage error).
    pub fn exit_code(self) -> u8 {
        match self {
            Category::Unavailable => 10,
            Category::Timeout => 11,
            Category::Overloaded => 12,
            Category::ShuttingDown => 13,
            Category::Conflict => 14,
            Category::Sql => 15,
            Category::Refused => 16,
            Category::Protocol => 17,
            Category::Expired => 18,
        }
    }

    /// Whether trying again can succeed without changing the request.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Category::Unavailable
                | Category::Timeout
                | Category::Overloaded
                | Category::ShuttingDown
        )
    }

    /// The category's name as printed in messages and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Category::Unavailable => "unavailable",
            Category::Timeout => "timeout",
            Category::Overloaded => "overloaded",
            Category::ShuttingDown => "shutting_down",
            Category::Conflict => "conflict",
            Category::Sql => "sql",
            Category::Refused => "refused",
            Category::Protocol => "protocol",
            Category::Expired => "expired",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_and_not_reserved() {
        let mut codes: Vec<u8> = Category::ALL.iter().map(|c| c.exit_code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Category::ALL.len());
        assert!(codes.iter().all(|&c| c > 2));
    }
}
