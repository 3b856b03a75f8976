//! Documented maximums. Each has a reason; the arbiter enforces them and
//! the client checks them first so an oversized request fails only itself.

/// Largest frame either side accepts, in bytes. A frame announcing more is
/// refused by the length-delimited codec before anything is allocated, and
/// closes that one connection. 16 MiB leaves room for a batch at
/// [`MAX_BATCH_BYTES`] plus framing.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Largest batch (SQL text plus parameters), in bytes.
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// Most statements in one batch.
pub const MAX_STATEMENTS: usize = 10_000;

/// Longest idempotency key, in bytes.
pub const MAX_KEY_LEN: usize = 128;

/// Unix socket paths are limited by `sun_path` (108 bytes on Linux,
/// including the terminating NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Most bytes of rows (`RETURNING`, or a query inside a batch) one receipt
/// may carry; the reply must fit in a frame. Read big results through the
/// reader instead.
pub const MAX_RESULT_BYTES: usize = 8 * 1024 * 1024;
