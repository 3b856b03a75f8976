//! Deleting idempotency keys: the oldest past `--max-keys`, exactly, and
//! those past the retention window, a step at a time.
//!
//! Keys are stored a commit's worth to a row ([`crate::keyrecord`]), so
//! the excess rarely ends at a row's end: the rows before the cut are
//! deleted, and the row the cut falls in is written again with its newer
//! keys only. Deleting it whole forgot keys still among the newest
//! `--max-keys` (a retry of one of them was applied again).

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use crate::keyindex::KeyIndex;
use crate::keyrecord::{damaged_row, decode_keys, encode_keys, unlimited, Entry, EntryRef};
use crate::requests::{in_transaction, now_s, read_row};
use crate::schema::Own;

/// Most rows deleted by one housekeeping pass.
pub const PRUNE_STEP: u64 = 1024;

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

/// Deletes the oldest `n` committed keys (inside the caller's
/// transaction; never keys the transaction itself records, so at most
/// every committed key); returns how many went.
///
/// # Errors
///
/// SQLite's error, or a row that cannot be decoded.
pub fn prune_oldest(
    conn: &Connection,
    own: &Own,
    keys: &KeyIndex,
    n: u64,
) -> rusqlite::Result<u64> {
    let n = n.min(keys.len());
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
            // The newest keys of the cut row that stay.
            let keep = rows.len() - n as usize;
            if keep == 0 {
                conn.prepare_cached(&own.prune_through)?.execute([cut])?;
            } else {
                conn.prepare_cached(&own.prune_through)?
                    .execute([cut - 1])?;
                let in_cut = rows.iter().filter(|&&(id, _)| id == cut).count();
                unlimited(conn, || trim(conn, own, keys, cut, in_cut - keep))?;
            }
            for &(id, h) in rows.iter().filter(|&&(id, _)| keep == 0 || id != cut) {
                keys.removed(h, id);
            }
            return Ok(n);
        }
        // A defect, caught by the index's check in debug builds; in a
        // release, prune whole rows through the one that reaches `n`.
        tracing::error!(
            expected = rows.len(),
            held,
            "the key index is out of step with the key table"
        );
    }
    delete(conn, keys, &own.prune_oldest, [n as i64])
}

/// Writes row `id` again without its oldest `drop` keys, telling `keys`.
fn trim(
    conn: &Connection,
    own: &Own,
    keys: &KeyIndex,
    id: i64,
    drop: usize,
) -> rusqlite::Result<()> {
    let blob = read_row(conn, own, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    let entries = decode_keys(&blob).map_err(|why| damaged_row(id, &why))?;
    let Some(kept) = entries.get(drop..) else {
        return Err(damaged_row(id, "it holds fewer keys than its count"));
    };
    let kept: Vec<Entry> = kept.iter().map(EntryRef::to_entry).collect();
    let blob = encode_keys(&kept)?;
    conn.prepare_cached(&own.trim_request)?
        .execute(rusqlite::params![id, kept.len() as i64, blob])?;
    for e in &entries[..drop] {
        keys.removed(keys.hash(e.key.as_bytes()), id);
    }
    Ok(())
}

/// Deletes up to [`PRUNE_STEP`] rows of keys older than the window, in
/// its own transaction; returns how many keys went. Costs one index-free
/// look at the oldest key when there is nothing to do.
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

#[cfg(test)]
#[path = "keyprune_tests.rs"]
mod tests;
