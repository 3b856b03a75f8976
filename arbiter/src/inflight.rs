//! The memory that requests in flight may hold, all together.
//!
//! A request's bytes are counted before they are read (from a frame's
//! length, or an HTTP body's announced or largest size) and released
//! once it is answered. A request costs at most [`Inflight::cost`] of its size in
//! memory (the bytes, the decoded batch, per-value overhead bounded by
//! `--max-values`), so the arbiter holds at most `--max-inflight-bytes`
//! for requests, however many callers send at once. A request that does
//! not fit waits for room (its connection is simply not read meanwhile),
//! and past the request timeout is answered `Overloaded`.
//!
//! Room is counted before the bytes arrive, so a caller that announces
//! large requests and sends them slowly (or never) holds it meanwhile. The
//! room of bodies still on their way is therefore also counted against
//! their process's share, [`PEER_SHARE`] of the budget (its further bodies
//! wait for its own to arrive): one process that stalls its bodies cannot
//! take the room of the others. A body that has arrived gives its share
//! back ([`Room::arrived`]) and keeps its room in the budget until it has
//! run, so requests queued behind a transaction never hold up that
//! transaction's own next statement from the same process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scribe_protocol::WriteError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default bytes all requests in flight may hold.
pub const MAX_INFLIGHT_BYTES: u64 = 256 * 1024 * 1024;

/// Counted in KiB, so any size fits a semaphore's `u32` permits.
const UNIT: u64 = 1024;

/// The part of the budget one process may hold at once (a quarter: room
/// for one request of the largest frame at the default budget).
pub const PEER_SHARE: u64 = 4;

/// Decoded, a parameter value takes 32 bytes, whatever it took on the
/// wire (at least one byte there).
const VALUE_BYTES: u64 = 32;

/// The shared budget.
#[derive(Debug)]
pub struct Inflight {
    sem: Arc<Semaphore>,
    max_bytes: u64,
    max_values: u64,
    /// Each process's share, by pid (an entry lives while some room of
    /// that process is held; see [`Inflight::share`]).
    peers: Mutex<HashMap<i32, Arc<Semaphore>>>,
    /// Units of one process's share.
    peer_units: u32,
}

/// Room held by one request; dropping it gives the room back (to the
/// budget, and to its process's share if its body had not arrived).
#[derive(Debug)]
pub struct Room(OwnedSemaphorePermit, Option<OwnedSemaphorePermit>);

impl Room {
    /// The memory held, in KiB (rounded up).
    pub fn kib(&self) -> usize {
        self.0.num_permits()
    }

    /// The body has arrived whole: its process's share is given back (the
    /// room in the budget is kept until the request has run).
    pub fn arrived(&mut self) {
        self.1 = None;
    }
}

impl Inflight {
    /// A budget of `max_bytes`, for requests of at most `max_values`
    /// parameter values each.
    pub fn new(max_bytes: u64, max_values: u64) -> Arc<Inflight> {
        let units = (max_bytes / UNIT).clamp(1, u64::from(u32::MAX));
        Arc::new(Inflight {
            sem: Arc::new(Semaphore::new(units as usize)),
            max_bytes: units * UNIT,
            max_values,
            peers: Mutex::new(HashMap::new()),
            peer_units: u32::try_from((units / PEER_SHARE).max(1)).unwrap_or(u32::MAX),
        })
    }

    /// The share of process `pid`.
    fn share(&self, pid: i32) -> Arc<Semaphore> {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if !peers.contains_key(&pid) && peers.len() >= 64 {
            // Forget the processes that hold nothing (a held permit keeps
            // a reference to its semaphore).
            peers.retain(|_, s| Arc::strong_count(s) > 1);
        }
        peers
            .entry(pid)
            .or_insert_with(|| Arc::new(Semaphore::new(self.peer_units as usize)))
            .clone()
    }

    /// What a request of `bytes` may cost in memory, at most: its bytes,
    /// their decoded copy, and the per-value overhead (capped by the
    /// values a batch may carry).
    pub fn cost(&self, bytes: u64) -> u64 {
        let values = bytes
            .saturating_mul(VALUE_BYTES)
            .min(self.max_values.saturating_mul(VALUE_BYTES));
        bytes.saturating_mul(2).saturating_add(values)
    }

    /// The budget in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Bytes held now.
    pub fn held_bytes(&self) -> u64 {
        self.max_bytes
            .saturating_sub(self.sem.available_permits() as u64 * UNIT)
    }

    /// What a request of `bytes` holds in the budget (its cost, at most the
    /// whole budget) and of its process's share (at most the whole share:
    /// a request that costs more still runs, its body alone of its process
    /// on the way).
    fn units(&self, bytes: u64) -> (u32, u32) {
        let cost = self.cost(bytes).div_ceil(UNIT).max(1);
        let all = u32::try_from(cost.min(self.max_bytes / UNIT)).unwrap_or(u32::MAX);
        (all, all.min(self.peer_units))
    }

    /// Room for a request of `bytes` whose body has arrived whole, if there
    /// is some now: its process's share is not involved (the common case:
    /// no lock, no lookup).
    pub fn try_reserve_arrived(&self, bytes: u64) -> Option<Room> {
        let (all, _) = self.units(bytes);
        let all = self.sem.clone().try_acquire_many_owned(all).ok()?;
        Some(Room(all, None))
    }

    /// Room for a request of `bytes` from process `pid`, if there is some
    /// now.
    pub fn try_reserve(&self, bytes: u64, pid: i32) -> Option<Room> {
        let (all, own) = self.units(bytes);
        let own = self.share(pid).try_acquire_many_owned(own).ok()?;
        let all = self.sem.clone().try_acquire_many_owned(all).ok()?;
        Some(Room(all, Some(own)))
    }

    /// Room for a request of `bytes` from process `pid`, waiting up to
    /// `within` for it (for the process's own earlier requests first).
    ///
    /// # Errors
    ///
    /// `Overloaded` when no room came in time.
    pub async fn reserve(
        &self,
        bytes: u64,
        within: Duration,
        pid: i32,
    ) -> Result<Room, WriteError> {
        let (all, own) = self.units(bytes);
        let deadline = Instant::now() + within;
        let share = self.share(pid).acquire_many_owned(own);
        let own = match tokio::time::timeout_at(deadline.into(), share).await {
            Ok(Ok(p)) => p,
            _ => {
                return Err(WriteError::Overloaded {
                    reason: format!(
                        "this process's bodies still on their way hold all the memory one process \
                         may (1/{PEER_SHARE} of {} MiB, scribed --max-inflight-bytes)",
                        self.max_bytes / (1024 * 1024)
                    ),
                    retry_after_ms: 100,
                })
            }
        };
        match tokio::time::timeout_at(deadline.into(), self.sem.clone().acquire_many_owned(all))
            .await
        {
            Ok(Ok(p)) => Ok(Room(p, Some(own))),
            _ => Err(WriteError::Overloaded {
                reason: format!(
                    "requests in flight hold the most memory the arbiter gives them ({} MiB, \
                     scribed --max-inflight-bytes)",
                    self.max_bytes / (1024 * 1024)
                ),
                retry_after_ms: 100,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;
    const LONG: Duration = Duration::from_secs(1);
    const SHORT: Duration = Duration::from_millis(20);

    #[tokio::test(flavor = "current_thread")]
    async fn room_is_held_until_dropped() {
        let budget = Inflight::new(64 * MIB, 1000);
        // 10 MiB bodies cost about 20 MiB each: three processes fill it.
        let a = budget.reserve(10 * MIB, LONG, 1).await.unwrap();
        let _others: Vec<Room> = [2, 3]
            .into_iter()
            .map(|pid| budget.try_reserve(10 * MIB, pid).unwrap())
            .collect();
        let full = budget.reserve(10 * MIB, SHORT, 4).await;
        assert!(
            matches!(full, Err(WriteError::Overloaded { .. })),
            "{full:?}"
        );
        drop(a);
        assert!(budget.reserve(10 * MIB, SHORT, 4).await.is_ok());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_process_holds_at_most_its_share_of_bodies_on_their_way() {
        let budget = Inflight::new(256 * MIB, 1000);
        // Bodies announced and never sent hold their room: one process
        // may hold a quarter of the budget that way, not all of it.
        let mut held = Vec::new();
        while let Some(r) = budget.try_reserve(8 * MIB, 7) {
            held.push(r);
        }
        let share = budget.held_bytes();
        assert!(share <= 64 * MIB && share > 32 * MIB, "{share}");
        let more = budget.reserve(8 * MIB, SHORT, 7).await;
        assert!(
            matches!(&more, Err(WriteError::Overloaded { reason, .. }) if reason.contains("one process")),
            "{more:?}"
        );
        // A body that has arrived whole takes no share: it finds room.
        assert!(budget.try_reserve_arrived(8 * MIB).is_some());
        // Every other process still finds room.
        for pid in 8..11 {
            assert!(budget.try_reserve(8 * MIB, pid).is_some());
        }
        assert!(budget.reserve(4 * 1024, SHORT, 99).await.is_ok());
        // Bodies that have arrived keep their room in the budget but give
        // the share back: the process's next request goes on.
        let before = budget.held_bytes();
        held.iter_mut().for_each(Room::arrived);
        assert_eq!(budget.held_bytes(), before, "the budget's room is kept");
        assert!(budget.try_reserve(8 * MIB, 7).is_some());
        // A request costing more than the whole share still runs, and is
        // counted whole in the budget.
        let big = budget.try_reserve(40 * MIB, 12).unwrap();
        assert!(big.kib() as u64 * 1024 >= 80 * MIB, "{}", big.kib());
    }
}
