//! How idempotency keys are stored (schema 4): a commit's keys share rows
//! of `_scribe_requests`, each row's keys in one blob (at most 64 a row:
//! see `keyindex::staged`).
//!
//! A row per key cost a statement and a b-tree insert for every keyed
//! write, about 6,000 of the arbiter's 20,600 instructions per write with
//! 16 writes in flight (callgrind). A commit's keys share its seq and its
//! time, so one row carries many: the statement is paid once per group
//! of up to 64. The blob is only read back when a key may be replayed, when
//! the index is built at open, and by the debug builds' check.

use bincode::Options as _;
use scribe_protocol::{Receipt, WriteError};
use serde::{Deserialize, Serialize};

/// Receipt encodings: the first byte of a stored receipt.
const FORMAT_V0: u8 = 0;
const FORMAT_V1: u8 = 1;

/// The encoding of a row's keys: the first byte of the blob.
const FORMAT_KEYS: u8 = 2;

/// One recorded key, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The key as the caller sent it.
    pub key: String,
    /// The fingerprint of its batch.
    pub fingerprint: u64,
    /// What its caller was told, encoded ([`encode_receipt`]); kept
    /// encoded, so that a receipt stored by an older release (format 0)
    /// is carried by the upgrade as it was. As bytes: as a sequence,
    /// bincode wrote it a byte at a time (a sixth of the key path's
    /// instructions).
    #[serde(with = "serde_bytes")]
    pub receipt: Vec<u8>,
}

/// One recorded key as read from a row, borrowing the row's bytes (the
/// index is built from these at open without a copy of each key).
#[derive(Debug, Deserialize)]
pub struct EntryRef<'a> {
    /// The key.
    pub key: &'a str,
    /// The fingerprint of its batch.
    pub fingerprint: u64,
    /// Its receipt, encoded.
    pub receipt: &'a [u8],
}

impl EntryRef<'_> {
    /// The entry, owned.
    pub fn to_entry(&self) -> Entry {
        Entry {
            key: self.key.to_owned(),
            fingerprint: self.fingerprint,
            receipt: self.receipt.to_vec(),
        }
    }
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
pub fn encode_receipt(key: &str, receipt: &Receipt) -> Result<Vec<u8>, WriteError> {
    // Sized for a one-statement receipt: growing from one byte took
    // several reallocations per write.
    let mut out = Vec::with_capacity(64);
    out.push(FORMAT_V1);
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
pub fn decode_receipt(key: &str, blob: &[u8]) -> Result<Receipt, WriteError> {
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

/// Encodes a row's keys, for a statement's parameter.
///
/// # Errors
///
/// bincode's, which an in-memory list of strings and bytes never meets.
pub fn encode_keys(entries: &[Entry]) -> rusqlite::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(1 + entries.len() * 64);
    out.push(FORMAT_KEYS);
    bincode::DefaultOptions::new()
        .serialize_into(&mut out, entries)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e))?;
    Ok(out)
}

/// Decodes a row's keys, borrowing from `blob`.
///
/// # Errors
///
/// Why the blob cannot be read (damaged, or of an unknown format).
pub fn decode_keys(blob: &[u8]) -> Result<Vec<EntryRef<'_>>, String> {
    match blob.split_first() {
        Some((&FORMAT_KEYS, rest)) => bincode::DefaultOptions::new()
            .deserialize(rest)
            .map_err(|e| e.to_string()),
        Some((f, _)) => Err(format!("unknown format {f}")),
        None => Err("empty".into()),
    }
}

/// Runs `f`, the arbiter's own reads or writes of key rows, with SQLite's
/// longest value (`--max-value-bytes`, which bounds the programs'
/// statements) lifted to SQLite's own maximum, and puts it back after.
///
/// A row holds several receipts, each of which its batch produced under
/// that limit; the row itself may be longer, and so may one receipt made
/// of several statements' results. Under the limit such a row failed
/// every write of its group, and once the limit was lowered the arbiter
/// could neither upgrade nor open a database that held one.
///
/// # Errors
///
/// `f`'s, or SQLite's when the limit cannot be read or set.
pub fn unlimited<T>(
    conn: &rusqlite::Connection,
    f: impl FnOnce() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    use rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH;
    let was = conn.set_limit(SQLITE_LIMIT_LENGTH, i32::MAX)?;
    let out = f();
    conn.set_limit(SQLITE_LIMIT_LENGTH, was)?;
    out
}

/// A row whose keys cannot be read: its keys cannot be told apart from
/// new ones.
pub fn damaged_row(id: i64, why: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
        Some(format!(
            "the idempotency keys stored in row {id} of _scribe_requests cannot be decoded \
             ({}); with the arbiter stopped, deleting that row lets it go on without \
             them (a retry of one of their writes would then apply it again)",
            why.replace('\n', " ")
        )),
    )
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
        let blob = encode_receipt("k", &r).unwrap();
        assert_eq!(decode_receipt("k", &blob).unwrap(), r);
        let mut old = vec![FORMAT_V0];
        old.extend(bincode::serialize(&r).unwrap());
        assert_eq!(decode_receipt("k", &old).unwrap(), r, "0.1.0's encoding");
        for bad in [vec![], vec![9, 1, 2], vec![FORMAT_V1, 0xff]] {
            let e = decode_receipt("k", &bad).unwrap_err();
            assert!(e.to_string().contains("cannot be decoded"), "{e}");
        }
    }

    #[test]
    fn a_rows_keys_round_trip_and_damage_is_an_error() {
        let entries = vec![
            Entry {
                key: "a".into(),
                fingerprint: u64::MAX,
                receipt: vec![1, 2, 3],
            },
            Entry {
                key: "ключ".into(),
                fingerprint: 0,
                receipt: vec![],
            },
        ];
        let blob = encode_keys(&entries).unwrap();
        let read: Vec<Entry> = decode_keys(&blob)
            .unwrap()
            .iter()
            .map(EntryRef::to_entry)
            .collect();
        assert_eq!(read, entries);
        assert!(decode_keys(&encode_keys(&[]).unwrap()).unwrap().is_empty());
        for bad in [vec![], vec![FORMAT_V1, 0], blob[..blob.len() - 1].to_vec()] {
            assert!(decode_keys(&bad).is_err(), "{bad:?}");
        }
    }
}
