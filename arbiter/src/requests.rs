//! Idempotency keys: key → (fingerprint of the batch, receipt), recorded
//! in the same transaction as the batch it belongs to.
//!
//! Retention: a key is kept for at least the retention window (default
//! 24 h) unless more than the retention count (default 100,000) are
//! stored, in which case the oldest go first. The count holds under any
//! load: a group that takes the table past it deletes the excess, oldest
//! first, in its own transaction. Keys past the window go on the
//! housekeeping tick, [`PRUNE_STEP`] at a time. Keys are stored in
//! insertion order (the rowid), so both deletions take the front of one
//! b-tree; the table has no index on the key, the arbiter keeps one in
//! memory ([`KeyIndex`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bincode::Options as _;
use rusqlite::{Connection, OptionalExtension};
use scribe_protocol::{Receipt, WriteError};

use crate::exec::Prepared;
use crate::keyindex::{Key, KeyIndex};
use crate::schema::Own;

/// Most keys deleted by one housekeeping pass.
pub const PRUNE_STEP: u64 = 1024;

/// Receipt encodings: the first byte of a stored receipt.
const FORMAT_V0: u8 = 0;
const FORMAT_V1: u8 = 1;

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

/// A stored receipt that cannot be read back: the record is damaged.
fn unreadable(key: &str, why: &str) -> WriteError {
    WriteError::Sql {
        statement: None,
        code: rusqlite::ffi::SQLITE_CORRUPT,
        message: format!(
            "the receipt stored for idempotency key {key:?} cannot be decoded ({why})"
        ),
    }
}

/// Encodes a receipt for storage.
///
/// # Errors
///
/// When the receipt cannot be encoded (never stored as an empty blob).
pub fn encode(key: &str, receipt: &Receipt) -> Result<Vec<u8>, WriteError> {
    let mut out = vec![FORMAT_V1];
    bincode::DefaultOptions::new()
        .serialize_into(&mut out, receipt)
        .map_err(|e| WriteError::Sql {
            statement: None,
            code: rusqlite::ffi::SQLITE_ERROR,
            message: format!("cannot encode the receipt of idempotency key {key:?}: {e}"),
        })?;
    Ok(out)
}

/// Decodes a stored receipt (either format).
///
/// # Errors
///
/// When the blob is damaged or of an unknown format.
pub fn decode(key: &str, blob: &[u8]) -> Result<Receipt, WriteError> {
    match blob.split_first() {
        Some((&FORMAT_V1, rest)) => bincode::DefaultOptions::new()
            .deserialize(rest)
            .map_err(|e| unreadable(key, &e.to_string())),
        // scribe 0.1.0 stored bincode's legacy encoding.
        Some((&FORMAT_V0, rest)) => {
            bincode::deserialize(rest).map_err(|e| unreadable(key, &e.to_string()))
        }
        Some((f, _)) => Err(unreadable(key, &format!("unknown format {f}"))),
        None => Err(unreadable(key, "empty")),
    }
}

/// The stored fingerprint and receipt of `key`, if any, in the open
/// transaction: the rows `keys` files under its hash, read by rowid and
/// compared by key (no SQL at all when there is none).
///
/// # Errors
///
/// SQLite's error, or a receipt that cannot be decoded.
pub fn find(
    conn: &Connection,
    own: &Own,
    keys: &KeyIndex,
    key: Key<'_>,
) -> Result<Option<(u64, Receipt)>, WriteError> {
    for id in keys.candidates(key.hash) {
        let row: Option<(bool, i64, Vec<u8>)> = conn
            .prepare_cached(&own.request_by_id)
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    let same = r.get_ref(0)?.as_bytes()? == key.text.as_bytes();
                    Ok((same, r.get(1)?, r.get(2)?))
                })
                .optional()
            })
            .map_err(crate::group::commit_error)?;
        if let Some((true, hash, blob)) = row {
            return Ok(Some((hash as u64, decode(key.text, &blob)?)));
        }
    }
    Ok(None)
}

/// Records `key` with the batch's fingerprint and receipt (the caller
/// looked it up first: nothing in the table refuses a second row).
///
/// # Errors
///
/// SQLite's error, or a receipt that cannot be encoded.
pub fn record<'a>(
    conn: &'a Connection,
    own: &'a Own,
    keys: &KeyIndex,
    record: &Record<'_>,
    prepared: &mut Prepared<'a>,
) -> Result<(), WriteError> {
    let Record {
        key,
        fingerprint,
        receipt,
    } = *record;
    let blob = encode(key.text, receipt)?;
    // Kept for the group: a group of 16 writes took it from the statement
    // cache and gave it back 16 times.
    let stmt = prepared
        .own(conn, &own.record_request)
        .map_err(crate::group::commit_error)?;
    stmt.execute(rusqlite::params![
        key.text,
        fingerprint as i64,
        receipt.seq as i64,
        now_s(),
        blob
    ])
    .map_err(crate::group::commit_error)?;
    keys.added(key.hash, conn.last_insert_rowid());
    Ok(())
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

/// Runs a deletion that returns `id, key` (as text) of each deleted row, telling
/// `keys`; returns how many went.
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
        keys.removed(keys.hash(row.get_ref(1)?.as_bytes()?), id);
        n += 1;
    }
    Ok(n)
}

/// Deletes the oldest `n` keys (inside the caller's transaction);
/// returns how many went.
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
            let gone = conn.prepare_cached(&own.prune_through)?.execute([cut])?;
            debug_assert_eq!(gone, rows.len(), "counted, then deleted in one transaction");
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

/// Deletes up to [`PRUNE_STEP`] keys older than the window, in its own
/// transaction; returns how many went. Costs one index-free look at the
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
    keys.check(conn, &own.count_requests);
    out
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

    /// Records `key` with `fingerprint` and `receipt` in the open
    /// transaction (see [`record`]).
    ///
    /// # Errors
    ///
    /// SQLite's error.
    pub fn record_key<'a>(
        &'a self,
        record: &Record<'_>,
        prepared: &mut Prepared<'a>,
    ) -> Result<(), WriteError> {
        self.guard
            .trusted(|| self::record(&self.conn, &self.own, &self.keys, record, prepared))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scribe_protocol::StatementResult;

    #[test]
    fn receipts_round_trip_and_damage_is_an_error() {
        let r = Receipt {
            seq: 7,
            results: vec![StatementResult {
                rows_affected: 1,
                last_insert_rowid: 42,
                ..Default::default()
            }],
            replayed: false,
        };
        let blob = encode("k", &r).unwrap();
        assert_eq!(decode("k", &blob).unwrap(), r);
        let mut old = vec![FORMAT_V0];
        old.extend(bincode::serialize(&r).unwrap());
        assert_eq!(decode("k", &old).unwrap(), r, "0.1.0's encoding");
        for bad in [vec![], vec![9, 1, 2], vec![FORMAT_V1, 0xff]] {
            let e = decode("k", &bad).unwrap_err();
            assert!(e.to_string().contains("cannot be decoded"), "{e}");
        }
    }
}
