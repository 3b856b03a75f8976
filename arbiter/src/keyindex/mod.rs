//! Where each recorded idempotency key's row is, in memory.
//!
//! The key table has one b-tree, in insertion order (the rowid), and no
//! index on the key: an index is a second b-tree, so every keyed commit
//! wrote (and, under `--synchronous full`, synced) one more page for it.
//! The arbiter is the table's only writer, so it keeps the index itself:
//! a hash of each key → the rowids whose key has that hash. A lookup that
//! misses costs no SQL at all; one that hits reads the row by rowid and
//! compares the key itself, so a hash collision is never taken for a key.
//!
//! The index also keeps the committed rows in rowid order, with their
//! hashes, so that the oldest keys can be pruned by a range of rowids
//! without reading their keys back (see
//! [`requests::prune_oldest`](crate::requests::prune_oldest)).
//!
//! A row holds up to 64 keys of one commit (see
//! [`keyrecord`](crate::keyrecord)), so several keys share a rowid. The
//! keys the open transaction records are staged here, with the rowids
//! their rows will take, and written just before COMMIT.
//!
//! The map changes with the transaction that changes the table: keys
//! staged or rows deleted in the open transaction are held apart (and
//! seen by lookups in it) until it commits; a rollback, or a rollback to
//! a batch's savepoint, drops them. It is rebuilt from the table at open.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::keyrecord::Entry;

mod slots;
mod staged;

use slots::{in_order, insert, out_of_order, remove, ByHash, Slot};
use staged::Staged;
pub use staged::{ROW_BYTES, ROW_KEYS};

/// One change of the open transaction to the table.
#[derive(Clone, Copy, Debug)]
enum Op {
    Added(u64, i64),
    Removed(u64, i64),
}

#[derive(Debug, Default)]
struct Inner {
    committed: ByHash<Slot>,
    /// The committed rows, `(rowid, hash)`, in rowid order.
    order: VecDeque<(i64, u64)>,
    len: u64,
    /// The open transaction's changes, in order.
    ops: Vec<Op>,
    /// How many of `ops` name each hash: a look-up of a key the open
    /// transaction did not touch skips `ops` (a group of a thousand
    /// writes would otherwise scan them a thousand times).
    touched: ByHash<u32>,
    /// The keys the open transaction records, in their rows to be.
    staged: Staged,
    /// The rowid of the next row: past every row the table held at open
    /// or got since (the arbiter is its only writer), and past every row
    /// a transaction staged, committed or not.
    next_id: i64,
}

impl Op {
    fn hash(self) -> u64 {
        match self {
            Op::Added(h, _) | Op::Removed(h, _) => h,
        }
    }
}

impl Inner {
    fn push(&mut self, op: Op) {
        *self.touched.entry(op.hash()).or_default() += 1;
        self.ops.push(op);
    }

    /// The open transaction ended: nothing of it is pending any more.
    fn clear(&mut self) {
        self.ops.clear();
        self.touched.clear();
        self.next_id = self.staged.end(self.next_id);
    }
}

/// A point of the open transaction to go back to (a batch's savepoint):
/// how many changes and staged keys it had.
#[derive(Clone, Copy, Debug)]
pub struct Mark(usize, usize);

/// A key with its hash, computed once for its look-up and its record.
#[derive(Clone, Copy, Debug)]
pub struct Key<'a> {
    /// The key as the caller sent it.
    pub text: &'a str,
    /// What [`KeyIndex::hash`] makes of it.
    pub hash: u64,
}

/// The in-memory index of the key table.
#[derive(Debug)]
pub struct KeyIndex {
    // Random per process: keys come from callers, and the map is rebuilt
    // at every open, so hashes need not be stable.
    hasher: RandomState,
    inner: RefCell<Inner>,
    /// Where `len` is published for `status`, once set.
    published: Option<Arc<AtomicU64>>,
}

impl KeyIndex {
    /// An empty index (a table with no keys).
    pub fn new() -> KeyIndex {
        KeyIndex {
            hasher: RandomState::new(),
            inner: RefCell::new(Inner {
                next_id: 1,
                ..Inner::default()
            }),
            published: None,
        }
    }

    /// Files a committed row's key as the index is built at open (rows
    /// in any order; [`KeyIndex::loaded`] ends the building).
    pub fn load(&self, id: i64, key: &[u8]) {
        let h = self.hash(key);
        let mut inner = self.inner.borrow_mut();
        insert(&mut inner.committed, h, id);
        inner.order.push_back((id, h));
        inner.len += 1;
    }

    /// Every row is filed, the newest of rowid `newest` (`None`: the
    /// table is empty).
    pub fn loaded(&self, newest: Option<i64>) {
        let mut inner = self.inner.borrow_mut();
        // By rowid only, and stable: a row's keys keep their order.
        inner.order.make_contiguous().sort_by_key(|&(id, _)| id);
        inner.next_id = inner.next_id.max(newest.map_or(1, |id| id + 1));
        if let Some(p) = &self.published {
            p.store(inner.len, Ordering::Relaxed);
        }
    }

    /// The newest committed row's rowid (`None`: no row).
    pub fn newest(&self) -> Option<i64> {
        self.inner.borrow().order.back().map(|&(id, _)| id)
    }

    /// Forgets every row, to be filed again from the table (which changed
    /// outside the arbiter): rowids handed out stay handed out.
    pub fn forget(&self) {
        let mut inner = self.inner.borrow_mut();
        let next_id = inner.next_id;
        *inner = Inner {
            next_id,
            ..Inner::default()
        };
    }

    /// `text` with its hash.
    pub fn key<'a>(&self, text: &'a str) -> Key<'a> {
        Key {
            text,
            hash: self.hash(text.as_bytes()),
        }
    }

    /// The hash a key (its bytes) is filed under.
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Publishes the count to `to` now and at every commit (for `status`).
    pub fn publish(&mut self, to: Arc<AtomicU64>) {
        to.store(self.len(), Ordering::Relaxed);
        self.published = Some(to);
    }

    /// Keys in the table as last committed.
    pub fn len(&self) -> u64 {
        self.inner.borrow().len
    }

    /// True when no key is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rowids that may hold a key of hash `h` in the open
    /// transaction, oldest first.
    pub fn candidates(&self, h: u64) -> Vec<i64> {
        let inner = self.inner.borrow();
        let mut out: Vec<i64> = match inner.committed.get(&h) {
            None => Vec::new(),
            Some(Slot::One(id)) => vec![*id],
            Some(Slot::Many(ids)) => ids.clone(),
        };
        if !inner.touched.contains_key(&h) {
            return out;
        }
        for op in &inner.ops {
            match *op {
                Op::Added(a, id) if a == h => out.push(id),
                Op::Removed(a, id) if a == h => out.retain(|x| *x != id),
                _ => {}
            }
        }
        out
    }

    /// The committed keys of the oldest rows that hold at least `n`,
    /// `(rowid, hash)` in rowid order (every key of the last row, so
    /// possibly more than `n`), when the open transaction has deleted
    /// none and at least `n` are committed: then they are the keys of the
    /// table's oldest rows up to the last one's rowid.
    pub fn oldest(&self, n: u64) -> Option<Vec<(i64, u64)>> {
        let inner = self.inner.borrow();
        let deleting = inner.ops.iter().any(|op| matches!(op, Op::Removed(..)));
        let n = usize::try_from(n).ok()?;
        if deleting || inner.order.len() < n {
            return None;
        }
        let Some(n) = n.checked_sub(1) else {
            return Some(Vec::new());
        };
        let cut = inner.order[n].0;
        let end = n + inner
            .order
            .range(n..)
            .take_while(|&&(id, _)| id == cut)
            .count();
        Some(inner.order.range(..end).copied().collect())
    }

    /// The hashes of the committed keys of row `id` (the row is being
    /// deleted: its keys need not be read back).
    pub fn row(&self, id: i64) -> Vec<u64> {
        let inner = self.inner.borrow();
        let from = inner.order.partition_point(|&(x, _)| x < id);
        inner
            .order
            .range(from..)
            .take_while(|&&(x, _)| x == id)
            .map(|&(_, h)| h)
            .collect()
    }

    /// Stages `entry`, of hash `h`, for the rows the open transaction
    /// writes at its end.
    pub fn stage(&self, h: u64, entry: Entry) {
        let mut inner = self.inner.borrow_mut();
        let next_id = inner.next_id;
        let id = inner.staged.push(next_id, entry);
        inner.push(Op::Added(h, id));
    }

    /// True when row `id` is one the open transaction staged (not yet
    /// in the table).
    pub fn is_staged(&self, id: i64) -> bool {
        id >= self.inner.borrow().next_id
    }

    /// The staged entry of `key`, if any.
    pub fn staged(&self, key: &str) -> Option<Entry> {
        self.inner.borrow().staged.find(key).cloned()
    }

    /// Calls `f` with each row the open transaction staged: its rowid and
    /// its keys.
    pub fn with_staged<T>(
        &self,
        f: impl FnOnce(&mut dyn Iterator<Item = (i64, &[Entry])>) -> T,
    ) -> T {
        let inner = self.inner.borrow();
        let mut rows = inner.staged.rows();
        f(&mut rows)
    }

    /// Row `id` now holds a key of hash `h` (in the open transaction):
    /// for tests, which file committed rows directly (the arbiter stages
    /// its keys, [`KeyIndex::stage`]).
    #[cfg(test)]
    pub fn added(&self, h: u64, id: i64) {
        self.inner.borrow_mut().push(Op::Added(h, id));
    }

    /// Row `id`, of hash `h`, was deleted (in the open transaction).
    pub fn removed(&self, h: u64, id: i64) {
        self.inner.borrow_mut().push(Op::Removed(h, id));
    }

    /// Where the open transaction is now.
    pub fn mark(&self) -> Mark {
        let inner = self.inner.borrow();
        Mark(inner.ops.len(), inner.staged.len())
    }

    /// Forgets what the open transaction did since `mark` (its
    /// savepoint was rolled back to).
    pub fn undo_to(&self, mark: Mark) {
        let mut inner = self.inner.borrow_mut();
        let Inner {
            ops,
            touched,
            staged,
            ..
        } = &mut *inner;
        staged.truncate(mark.1);
        for op in ops.drain(mark.0.min(ops.len())..) {
            if let Some(n) = touched.get_mut(&op.hash()) {
                *n -= 1;
                if *n == 0 {
                    touched.remove(&op.hash());
                }
            }
        }
    }

    /// The open transaction committed: its changes are the table's.
    pub fn commit(&self) {
        let mut inner = self.inner.borrow_mut();
        let Inner {
            committed,
            order,
            len,
            ops,
            touched,
            staged,
            next_id,
        } = &mut *inner;
        touched.clear();
        *next_id = staged.end(*next_id);
        for op in ops.drain(..) {
            match op {
                Op::Added(h, id) => {
                    insert(committed, h, id);
                    in_order(order, id, h);
                    *len += 1;
                }
                Op::Removed(h, id) => {
                    if remove(committed, h, id) {
                        out_of_order(order, id, h);
                        *len -= 1;
                    }
                }
            }
        }
        if let Some(p) = &self.published {
            p.store(*len, Ordering::Relaxed);
        }
    }

    /// In debug builds (every test), checks the index against the table
    /// once a transaction has ended: `stored` is the table's count of
    /// keys by its `n` column, `read` the keys its rows hold, `distinct`
    /// how many of those differ (see `requests::check`). A path that
    /// commits or rolls back keys without telling the index, or a key
    /// stored twice, fails here.
    ///
    /// # Panics
    ///
    /// When they differ.
    pub fn check(&self, stored: u64, read: u64, distinct: u64) {
        let len = self.len();
        assert_eq!(
            (stored, read, distinct),
            (len, len, len),
            "the key index ({len} keys) is out of step with _scribe_requests \
             (keys counted, read, different)"
        );
    }

    /// The open transaction rolled back: nothing it did stays.
    pub fn rollback(&self) {
        self.inner.borrow_mut().clear();
    }
}

impl Default for KeyIndex {
    fn default() -> Self {
        KeyIndex::new()
    }
}

#[cfg(test)]
mod tests;
