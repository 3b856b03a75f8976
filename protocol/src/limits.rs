//! Documented maximums. Each has a reason; the arbiter enforces them and
//! the client checks them first so an oversized request fails only itself.

/// Largest frame either side accepts, in bytes. A frame announcing more is
/// refused by the length-delimited codec before anything is allocated, and
/// closes that one connection. 16 MiB leaves room for a batch at
/// [`MAX_BATCH_BYTES`] plus framing.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Default largest batch (SQL text plus parameters), in bytes.
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Default most statements in one batch.
pub const MAX_STATEMENTS: usize = 10_000;

/// Default longest SQL text of one statement, in bytes.
pub const MAX_SQL_BYTES: usize = 1024 * 1024;

/// Default most parameters of one statement (SQLite's own default limit
/// on host parameters is 32,766).
pub const MAX_PARAMS: usize = 32_766;

/// Default most parameter values in one batch, all statements together.
/// Each value costs 32 bytes once decoded, whatever it cost on the wire
/// (a NULL is one byte there): this bounds what a request may cost in
/// memory besides its own bytes.
pub const MAX_VALUES: usize = 262_144;

/// Longest idempotency key, in bytes.
pub const MAX_KEY_LEN: usize = 128;

/// The request limits an arbiter enforces. It announces them at hello, so
/// a client refuses an oversized request itself, before sending it, and
/// fails only that request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Largest batch, SQL text plus parameters, in bytes.
    pub max_batch_bytes: u64,
    /// Most statements in one batch.
    pub max_statements: u64,
    /// Longest SQL text of one statement, in bytes.
    pub max_sql_bytes: u64,
    /// Most parameters of one statement.
    pub max_params: u64,
    /// Most parameter values in one batch, all statements together.
    pub max_values: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch_bytes: MAX_BATCH_BYTES as u64,
            max_statements: MAX_STATEMENTS as u64,
            max_sql_bytes: MAX_SQL_BYTES as u64,
            max_params: MAX_PARAMS as u64,
            max_values: MAX_VALUES as u64,
        }
    }
}

impl Limits {
    /// Keeps every limit within what a frame can carry.
    pub fn clamped(mut self) -> Limits {
        let room = (MAX_FRAME_LEN - 1024 * 1024) as u64;
        self.max_batch_bytes = self.max_batch_bytes.min(room);
        self.max_sql_bytes = self.max_sql_bytes.min(self.max_batch_bytes);
        self
    }
}

/// Unix socket paths are limited by `sun_path` (108 bytes on Linux,
/// including the terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Most bytes of rows (`RETURNING`, or a query inside a batch) one receipt
/// may carry; the reply must fit in a frame. Read big results through the
/// reader instead.
pub const MAX_RESULT_BYTES: usize = 8 * 1024 * 1024;
