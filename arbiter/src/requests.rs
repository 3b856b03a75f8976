//! Idempotency keys: key → (fingerprint of the batch, receipt), recorded
//! in the same transaction as the batch it belongs to.
//!
//! Retention: a key is kept for at least the retention window (default
//! 24 h) unless more than the retention count (default 100,000) are
//! stored, in which case the oldest go first. Pruning runs when the writer
//! is idle, at most once a minute, deleting at most [`PRUNE_CHUNK`] keys
//! at a time, so it never sits on the hot path.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension};
use scribe_protocol::Receipt;

use crate::guard::own;

/// The table, created at open. One b-tree keyed by the key (no rowid, no
/// second index): a recorded key costs one page per group, not three.
/// Pruning scans it, off the hot path.
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS _scribe_requests(
    key TEXT PRIMARY KEY,
    hash INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    receipt BLOB NOT NULL) WITHOUT ROWID;";

/// Most keys deleted by one pruning pass.
pub const PRUNE_CHUNK: u64 = 10_000;

/// How long and how many keys are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Keys younger than this are kept (unless over `max_keys`).
    pub window: Duration,
    /// At most this many keys are kept.
    pub max_keys: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            window: Duration::from_secs(24 * 3600),
            max_keys: 100_000,
        }
    }
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The stored fingerprint and receipt of `key`, if any.
///
/// # Errors
///
/// SQLite's error.
pub fn find(conn: &Connection, key: &str) -> rusqlite::Result<Option<(u64, Receipt)>> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached(own::FIND_REQUEST)?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.and_then(|(hash, blob)| {
        let receipt: Receipt = bincode::deserialize(&blob).ok()?;
        Some((hash as u64, receipt))
    }))
}

/// Records `key` with the batch's fingerprint and receipt.
///
/// # Errors
///
/// SQLite's error.
pub fn record(conn: &Connection, key: &str, hash: u64, receipt: &Receipt) -> rusqlite::Result<()> {
    let blob = bincode::serialize(receipt).unwrap_or_default();
    conn.prepare_cached(own::RECORD_REQUEST)?
        .execute(rusqlite::params![
            key,
            hash as i64,
            receipt.seq as i64,
            now_s(),
            blob
        ])
        .map(drop)
}

/// Deletes keys past the retention rule, at most [`PRUNE_CHUNK`] of them;
/// returns how many. Runs its own transaction.
///
/// # Errors
///
/// SQLite's error.
pub fn prune(conn: &Connection, retention: Retention) -> rusqlite::Result<u64> {
    let cutoff = now_s() - retention.window.as_secs() as i64;
    let tx = conn.unchecked_transaction()?;
    let old = tx.execute(
        "DELETE FROM _scribe_requests WHERE key IN \
         (SELECT key FROM _scribe_requests WHERE created_at < ?1 LIMIT ?2)",
        rusqlite::params![cutoff, PRUNE_CHUNK as i64],
    )?;
    let count: i64 = tx.query_row("SELECT count(*) FROM _scribe_requests", [], |r| r.get(0))?;
    let excess = (count - retention.max_keys as i64).clamp(0, PRUNE_CHUNK as i64);
    let over = if excess > 0 {
        tx.execute(
            "DELETE FROM _scribe_requests WHERE key IN \
             (SELECT key FROM _scribe_requests ORDER BY created_at, seq LIMIT ?1)",
            [excess],
        )?
    } else {
        0
    };
    tx.commit()?;
    Ok((old + over) as u64)
}
