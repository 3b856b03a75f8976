//! The keys the open transaction records, in the rows they will be
//! written as: at most [`ROW_KEYS`] keys and about [`ROW_BYTES`] a row,
//! at consecutive rowids from the index's next one.
//!
//! A row is capped so that the rows a replay reads and pruning rewrites
//! stay small. 64 keys a row keep nearly all of the saving of
//! one statement per group: groups rarely hold more.

use crate::keyrecord::Entry;

/// Most keys in one row.
pub const ROW_KEYS: usize = 64;
/// A row takes no more keys once its keys and receipts would hold more
/// than this many bytes; a key alone may hold more: it gets a row of its
/// own. (Rows are written and read with `--max-value-bytes` lifted: see
/// `keyrecord::unlimited`.)
pub const ROW_BYTES: usize = 64 << 10;

/// One row to be: its rowid and where its keys start.
#[derive(Debug)]
struct Row {
    id: i64,
    start: usize,
    bytes: usize,
}

/// The staged keys, in order, and their rows.
#[derive(Debug, Default)]
pub(super) struct Staged {
    entries: Vec<Entry>,
    rows: Vec<Row>,
}

/// What a key costs its row, at most (three lengths and the
/// fingerprint take up to 9 bytes each).
fn size(e: &Entry) -> usize {
    e.key.len() + e.receipt.len() + 36
}

impl Staged {
    /// Stages `entry`; returns the rowid of its row (`next_id` for the
    /// transaction's first).
    pub(super) fn push(&mut self, next_id: i64, entry: Entry) -> i64 {
        let bytes = size(&entry);
        let at = self.entries.len();
        match self.rows.last_mut() {
            Some(row) if at - row.start < ROW_KEYS && row.bytes + bytes <= ROW_BYTES => {
                row.bytes += bytes;
            }
            last => {
                let id = last.map_or(next_id, |r| r.id + 1);
                self.rows.push(Row {
                    id,
                    start: at,
                    bytes,
                });
            }
        }
        self.entries.push(entry);
        self.rows.last().map_or(next_id, |r| r.id)
    }

    /// How many keys are staged.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Keeps the first `len` keys (a savepoint was rolled back to).
    pub(super) fn truncate(&mut self, len: usize) {
        if len >= self.entries.len() {
            return;
        }
        self.entries.truncate(len);
        while self.rows.last().is_some_and(|r| r.start >= len) {
            self.rows.pop();
        }
        if let Some(row) = self.rows.last_mut() {
            row.bytes = self.entries[row.start..].iter().map(size).sum();
        }
    }

    /// The staged entry of `key`, if any.
    pub(super) fn find(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// Each row to write: its rowid and its keys.
    pub(super) fn rows(&self) -> impl Iterator<Item = (i64, &[Entry])> {
        self.rows.iter().enumerate().map(|(i, row)| {
            let end = self.rows.get(i + 1).map_or(self.entries.len(), |r| r.start);
            (row.id, &self.entries[row.start..end])
        })
    }

    /// The transaction ended (committed or not): clears the keys and
    /// returns the rowid after every row it staged, so that no rowid is
    /// taken twice, even after a COMMIT that failed but wrote.
    pub(super) fn end(&mut self, next_id: i64) -> i64 {
        let after = self.rows.last().map_or(next_id, |r| r.id + 1);
        self.entries.clear();
        self.rows.clear();
        after
    }
}
