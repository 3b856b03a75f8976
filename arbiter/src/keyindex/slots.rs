//! The committed rows' bookkeeping: keys' hashes to rowids, and the keys
//! in rowid order.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by a key's hash. The hash is already keyed at random
/// ([`KeyIndex::hash`]), so the map uses it as it is: hashing it again
/// (the standard map's SipHash) cost about 5% of the arbiter's time with
/// 16 writes in flight.
pub(super) type ByHash<V> = HashMap<u64, V, BuildHasherDefault<AsIs>>;

/// The hasher of [`ByHash`]: a `u64` is its own hash.
#[derive(Default)]
pub(super) struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64s are hashed here; anything else is folded in all the same.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The rowids under one hash: almost always one.
#[derive(Debug)]
pub(super) enum Slot {
    One(i64),
    Many(Vec<i64>),
}

pub(super) fn insert(map: &mut ByHash<Slot>, h: u64, id: i64) {
    match map.get_mut(&h) {
        None => {
            map.insert(h, Slot::One(id));
        }
        Some(Slot::One(old)) => {
            let old = *old;
            map.insert(h, Slot::Many(vec![old, id]));
        }
        Some(Slot::Many(ids)) => ids.push(id),
    }
}

/// Adds `(id, h)` to the keys in rowid order: at the end, as a new row's
/// rowid always is (the largest plus one).
pub(super) fn in_order(order: &mut VecDeque<(i64, u64)>, id: i64, h: u64) {
    match order.back() {
        Some(&(last, _)) if last > id => {
            let at = order.partition_point(|&(x, _)| x < id);
            order.insert(at, (id, h));
        }
        _ => order.push_back((id, h)),
    }
}

/// Takes key `h` of row `id` out of the keys in rowid order: from the
/// front, as pruning deletes the oldest.
pub(super) fn out_of_order(order: &mut VecDeque<(i64, u64)>, id: i64, h: u64) {
    if order.front() == Some(&(id, h)) {
        order.pop_front();
        return;
    }
    let from = order.partition_point(|&(x, _)| x < id);
    let at = order
        .range(from..)
        .take_while(|&&(x, _)| x == id)
        .position(|&(_, y)| y == h);
    if let Some(at) = at {
        order.remove(from + at);
    }
}

/// True when `id` was there.
pub(super) fn remove(map: &mut ByHash<Slot>, h: u64, id: i64) -> bool {
    match map.get_mut(&h) {
        Some(Slot::One(old)) if *old == id => {
            map.remove(&h);
            true
        }
        Some(Slot::Many(ids)) => {
            // One at a time: two keys of one row may share a hash.
            let gone = match ids.iter().position(|x| *x == id) {
                Some(at) => {
                    ids.remove(at);
                    true
                }
                None => false,
            };
            if let [only] = ids[..] {
                map.insert(h, Slot::One(only));
            }
            gone
        }
        _ => false,
    }
}
