//! Idempotency keys: key → (fingerprint of the batch, receipt), recorded
//! in the same transaction as the batch it belongs to.
//!
//! Retention: a key is kept for at least the retention window (default
//! 24 h) unless more than the retention count (default 100,000) are
//! stored, in which case the oldest go first. The count holds under any
//! load: a group that takes the table past it deletes the excess, oldest
//! first, in its own transaction. Keys past the window go on the
//! housekeeping tick, [`PRUNE_STEP`] rows at a time. A commit's keys are
//! one row ([`crate::keyrecord`]), and rows are in commit order (the
//! rowid), so both deletions take the front of one b-tree, whole rows at
//! a time; the table has no index on the key, the arbiter keeps one in
//! memory ([`KeyIndex`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension};
use scribe_protocol::{Receipt, WriteError};

use crate::keyindex::{Key, KeyIndex};
use crate::keyrecord::{
    damaged_row, decode_keys, decode_receipt, encode_keys, encode_receipt, Entry,
};
use crate::schema::Own;

/// Most keys deleted by one housekeeping pass.
pub const PRUNE_STEP: u64 = 1024;

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

/// Unix seconds now.
pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The stored fingerprint and receipt of `key`, if any, in the open
/// transaction: the rows `keys` files under its hash, read by rowid and
/// searched by key (no SQL at all when there is none; the keys the open
/// transaction staged are searched in memory).
///
/// # Errors
///
/// SQLite's error, or a row or receipt that cannot be decoded.
pub fn find(
    conn: &Connection,
    own: &Own,
    keys: &KeyIndex,
    key: Key<'_>,
) -> Result<Option<(u64, Receipt)>, WriteError> {
    let staged = keys.staged_id();
    for id in keys.candidates(key.hash) {
        let found = if id == staged {
            keys.staged(key.text).map(|e| (e.fingerprint, e.receipt))
        } else {
            let blob: Option<Vec<u8>> = conn
                .prepare_cached(&own.request_by_id)
                .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
                .map_err(crate::group::commit_error)?;
            match blob {
                None => None,
                Some(blob) => decode_keys(&blob)
                    .map_err(|why| crate::group::commit_error(damaged_row(id, &why)))?
                    .into_iter()
                    .find(|e| e.key == key.text)
                    .map(|e| (e.fingerprint, e.receipt.to_vec())),
            }
        };
        if let Some((fingerprint, receipt)) = found {
            return Ok(Some((fingerprint, decode_receipt(key.text, &receipt)?)));
        }
    }
    Ok(None)
}

/// Stages `key` with the batch's fingerprint and receipt, for the row
/// [`write_staged`] writes before the transaction commits (the caller
/// looked it up first: nothing refuses a second entry).
///
/// # Errors
///
/// A receipt that cannot be encoded.
pub fn record(keys: &KeyIndex, record: &Record<'_>) -> Result<(), WriteError> {
    let Record {
        key,
        fingerprint,
        receipt,
    } = *record;
    let entry = Entry {
        key: key.text.to_owned(),
        fingerprint,
        receipt: encode_receipt(key.text, receipt)?,
    };
    keys.stage(key.hash, entry);
    Ok(())
}

/// Writes the keys the open transaction staged as one row carrying the
/// commit's `seq` (nothing when it staged none).
///
/// # Errors
///
/// SQLite's error.
pub fn write_staged(
    conn: &Connection,
    own: &Own,
    keys: &KeyIndex,
    seq: u64,
) -> rusqlite::Result<()> {
    keys.with_staged(|id, entries| {
        if entries.is_empty() {
            return Ok(());
        }
        let blob = encode_keys(entries)
            .map_err(|why| rusqlite::Error::ToSqlConversionFailure(why.into()))?;
        conn.prepare_cached(&own.record_request)?
            .execute(rusqlite::params![
                id,
                seq as i64,
                now_s(),
                entries.len() as i64,
                blob
            ])
            .map(drop)
    })
}

/// One key to record.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    /// The key.
    pub key: Key<'a>,
    /// The fingerprint of its batch.
    pub fingerprint: u64,
    /// What its caller was told.
    pub receipt: &'a Receipt,
}

/// Copies the newest key row's seq to `_scribe_meta` before keys are
/// deleted: the readers' `_scribe_seq` must not go back when the row that
/// carried the latest seq goes (see `schema::V2_TO_V3`).
fn keep_seq(conn: &Connection, own: &Own) -> rusqlite::Result<()> {
    conn.prepare_cached(&own.keep_seq)?.execute([]).map(drop)
}

/// Runs a deletion that returns the rowid of each deleted row, telling
/// `keys` of their keys; returns how many keys went.
fn delete(
    conn: &Connection,
    keys: &KeyIndex,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        for h in keys.row(id) {
            keys.removed(h, id);
            n += 1;
        }
    }
    Ok(n)
}

/// Deletes the oldest rows that hold `n` keys or more (inside the
/// caller's transaction); returns how many keys went.
///
/// # Errors
///
/// SQLite's error.
pub fn prune_oldest(
    conn: &Connection,
    own: &Own,
    keys: &KeyIndex,
    n: u64,
) -> rusqlite::Result<u64> {
    if n == 0 {
        return Ok(0);
    }
    keep_seq(conn, own)?;
    // By a range of rowids when the index knows the oldest rows: no key
    // read back and hashed, no list of rowids built by SQLite. (Reading
    // the keys back cost about 9,000 instructions per pruned key, half as
    // much as a write itself; callgrind, --max-keys 1000.)
    if let Some(rows) = keys.oldest(n) {
        let Some(&(cut, _)) = rows.last() else {
            return Ok(0);
        };
        let held: i64 = conn
            .prepare_cached(&own.count_through)?
            .query_row([cut], |r| r.get(0))?;
        if usize::try_from(held).ok() == Some(rows.len()) {
            conn.prepare_cached(&own.prune_through)?.execute([cut])?;
            for &(id, h) in &rows {
                keys.removed(h, id);
            }
            return Ok(rows.len() as u64);
        }
        // A defect, caught by the index's check in debug builds; in a
        // release, prune by reading the keys back, which is always exact.
        tracing::error!(
            expected = rows.len(),
            held,
            "the key index is out of step with the key table"
        );
    }
    delete(conn, keys, &own.prune_oldest, [n as i64])
}

/// Deletes up to [`PRUNE_STEP`] rows of keys older than the window, in its own
/// transaction; returns how many keys went. Costs one index-free look at the
/// oldest key when there is nothing to do.
///
/// # Errors
///
/// SQLite's error (the transaction is rolled back, `keys` told).
pub fn prune_aged(
    conn: &Connection,
    own: &Own,
    keys: &KeyIndex,
    window: Duration,
) -> rusqlite::Result<u64> {
    let cutoff = now_s() - window.as_secs() as i64;
    let oldest: Option<i64> = conn
        .prepare_cached(&own.oldest_request)?
        .query_row([], |r| r.get(0))
        .optional()?;
    if oldest.is_none_or(|t| t >= cutoff) {
        return Ok(0);
    }
    in_transaction(conn, own, keys, || {
        keep_seq(conn, own)?;
        delete(
            conn,
            keys,
            &own.prune_before,
            rusqlite::params![cutoff, PRUNE_STEP as i64],
        )
    })
}

/// Runs `f` in a transaction of its own and commits it, `keys` in step.
///
/// # Errors
///
/// `f`'s error or COMMIT's; the transaction is rolled back.
pub fn in_transaction<T>(
    conn: &Connection,
    own: &Own,
    keys: &KeyIndex,
    f: impl FnOnce() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    keys.rollback();
    let tx = conn.unchecked_transaction()?;
    let out = match f().and_then(|out| tx.commit().map(|()| out)) {
        Ok(out) => {
            keys.commit();
            Ok(out)
        }
        Err(e) => {
            keys.rollback();
            Err(e)
        }
    };
    check(conn, own, keys);
    out
}

/// In debug builds (every test), the key index against the table once a
/// transaction has ended (see [`KeyIndex::check`]). A table that cannot
/// be read proves nothing and is let go.
///
/// # Panics
///
/// When they differ, in debug builds.
pub fn check(conn: &Connection, own: &Own, keys: &KeyIndex) {
    if !cfg!(debug_assertions) || !conn.is_autocommit() {
        return;
    }
    let Ok(mut stmt) = conn.prepare_cached(&own.count_requests) else {
        return;
    };
    let Ok(rows) = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
    else {
        return;
    };
    let (mut stored, mut read) = (0, 0);
    let mut distinct = std::collections::HashSet::new();
    for row in rows {
        let Ok((n, blob)) = row else { return };
        let entries = decode_keys(&blob).expect("a key row this build wrote decodes");
        stored += n as u64;
        read += entries.len() as u64;
        distinct.extend(entries.into_iter().map(|e| e.key.to_owned()));
    }
    keys.check(stored, read, distinct.len() as u64);
}

/// Builds the key index from the table (at open).
///
/// # Errors
///
/// SQLite's error, or a row whose keys cannot be decoded.
pub fn load(conn: &Connection, own: &Own) -> rusqlite::Result<KeyIndex> {
    let keys = KeyIndex::new();
    let mut stmt = conn.prepare(&own.all_requests)?;
    let mut rows = stmt.query([])?;
    let mut newest = None;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let entries =
            decode_keys(row.get_ref(1)?.as_bytes()?).map_err(|why| damaged_row(id, &why))?;
        for e in entries {
            keys.load(id, e.key.as_bytes());
        }
        newest = newest.max(Some(id));
    }
    keys.loaded(newest);
    Ok(keys)
}

impl crate::group::Session {
    /// The stored fingerprint and receipt of `key`, in the open
    /// transaction (see [`find`]).
    ///
    /// # Errors
    ///
    /// SQLite's error, or a receipt that cannot be decoded.
    pub fn find_key(&self, key: Key<'_>) -> Result<Option<(u64, Receipt)>, WriteError> {
        self.guard
            .trusted(|| find(&self.conn, &self.own, &self.keys, key))
    }

    /// Stages `key` with `fingerprint` and `receipt` in the open
    /// transaction (see [`record`]).
    ///
    /// # Errors
    ///
    /// A receipt that cannot be encoded.
    pub fn record_key(&self, record: &Record<'_>) -> Result<(), WriteError> {
        self::record(&self.keys, record)
    }
}
