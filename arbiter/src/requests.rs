//! Idempotency keys: key → (fingerprint of the batch, receipt), recorded
//! in the same transaction as the batch it belongs to.
//!
//! Retention: a key is kept for at least the retention window (default
//! 24 h) unless more than the retention count (default 100,000) are
//! stored, in which case the oldest go first. The count holds under any
//! load: a group that takes the table past it deletes the excess, oldest
//! first, in its own transaction. Keys past the window go on the
//! housekeeping tick, [`PRUNE_STEP`] rows at a time (see
//! [`crate::keyprune`]). A commit's keys share rows
//! ([`crate::keyrecord`]), and rows are in commit order (the rowid), so
//! both deletions take the front of one b-tree; the table has no index on
//! the key, the arbiter keeps one in memory ([`KeyIndex`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension};
use scribe_protocol::{Receipt, WriteError};

use crate::keyindex::{Key, KeyIndex};
use crate::keyrecord::{
    damaged_row, decode_keys, decode_receipt, encode_keys, encode_receipt, unlimited, Entry,
};
use crate::schema::Own;

pub use crate::keyprune::{prune_aged, prune_oldest, PRUNE_STEP};

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
    for id in keys.candidates(key.hash) {
        let found = if keys.is_staged(id) {
            keys.staged(key.text).map(|e| (e.fingerprint, e.receipt))
        } else {
            match read_row(conn, own, id).map_err(crate::group::commit_error)? {
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

/// Row `id`'s keys as stored, if it is there (its keys are read whole,
/// with the length limit lifted: see [`unlimited`]).
///
/// # Errors
///
/// SQLite's error, or a row whose keys are not a blob.
pub fn read_row(conn: &Connection, own: &Own, id: i64) -> rusqlite::Result<Option<Vec<u8>>> {
    unlimited(conn, || {
        conn.prepare_cached(&own.request_by_id)?
            .query_row([id], |r| blob(r.get_ref(0)?, id).map(<[u8]>::to_vec))
            .optional()
    })
}

/// A row's keys column as bytes: anything else is a damaged row.
fn blob(value: rusqlite::types::ValueRef<'_>, id: i64) -> rusqlite::Result<&[u8]> {
    value
        .as_bytes()
        .map_err(|_| damaged_row(id, "its keys are not a blob"))
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

/// Writes the keys the open transaction staged, a row of at most
/// [`crate::keyindex::ROW_KEYS`] at a time, each carrying the commit's
/// `seq` (nothing when it staged none).
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
    keys.with_staged(|rows| {
        unlimited(conn, || {
            for (id, entries) in rows {
                let blob = encode_keys(entries)?;
                conn.prepare_cached(&own.record_request)?
                    .execute(rusqlite::params![
                        id,
                        seq as i64,
                        now_s(),
                        entries.len() as i64,
                        blob
                    ])?;
            }
            Ok(())
        })
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
    let _ = unlimited(conn, || {
        check_rows(conn, own, keys);
        Ok(())
    });
}

fn check_rows(conn: &Connection, own: &Own, keys: &KeyIndex) {
    let Ok(mut stmt) = conn.prepare_cached(&own.all_requests) else {
        return;
    };
    let Ok(rows) = stmt.query_map([], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?)))
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
    unlimited(conn, || load_rows(conn, own))
}

/// Files the table's rows again into `keys` (the table changed outside
/// the arbiter: see `outside`).
///
/// # Errors
///
/// As [`load`].
pub fn reload(conn: &Connection, own: &Own, keys: &KeyIndex) -> rusqlite::Result<()> {
    keys.forget();
    unlimited(conn, || fill(conn, own, keys))
}

fn load_rows(conn: &Connection, own: &Own) -> rusqlite::Result<KeyIndex> {
    let keys = KeyIndex::new();
    fill(conn, own, &keys)?;
    Ok(keys)
}

fn fill(conn: &Connection, own: &Own, keys: &KeyIndex) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(&own.all_requests)?;
    let mut rows = stmt.query([])?;
    let mut newest = None;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let n = row
            .get::<_, i64>(1)
            .map_err(|_| damaged_row(id, "its count n is not an integer"))?;
        let entries =
            decode_keys(blob(row.get_ref(2)?, id)?).map_err(|why| damaged_row(id, &why))?;
        if usize::try_from(n).ok() != Some(entries.len()) {
            let why = format!("its count n is {n}, its blob holds {} keys", entries.len());
            return Err(damaged_row(id, &why));
        }
        for e in entries {
            keys.load(id, e.key.as_bytes());
        }
        newest = newest.max(Some(id));
    }
    keys.loaded(newest);
    Ok(())
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

#[cfg(test)]
#[path = "requests_tests.rs"]
mod tests;
