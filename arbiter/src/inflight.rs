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

use std::sync::Arc;
use std::time::Duration;

use scribe_protocol::WriteError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default bytes all requests in flight may hold.
pub const MAX_INFLIGHT_BYTES: u64 = 256 * 1024 * 1024;

/// Counted in KiB, so any size fits a semaphore's `u32` permits.
const UNIT: u64 = 1024;

/// Decoded, a parameter value takes 32 bytes, whatever it took on the
/// wire (at least one byte there).
const VALUE_BYTES: u64 = 32;

/// The shared budget.
#[derive(Debug)]
pub struct Inflight {
    sem: Arc<Semaphore>,
    max_bytes: u64,
    max_values: u64,
}

/// Room held by one request; dropping it gives the room back.
#[derive(Debug)]
pub struct Room(OwnedSemaphorePermit);

impl Room {
    /// The memory held, in KiB (rounded up).
    pub fn kib(&self) -> usize {
        self.0.num_permits()
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
        })
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

    fn units(&self, bytes: u64) -> u32 {
        let units = (self.cost(bytes).div_ceil(UNIT))
            .min(self.max_bytes / UNIT)
            .max(1);
        u32::try_from(units).unwrap_or(u32::MAX)
    }

    /// Room for a request of `bytes` if there is some now.
    pub fn try_reserve(&self, bytes: u64) -> Option<Room> {
        self.sem
            .clone()
            .try_acquire_many_owned(self.units(bytes))
            .ok()
            .map(Room)
    }

    /// Room for a request of `bytes`, waiting up to `within` for it.
    ///
    /// # Errors
    ///
    /// `Overloaded` when no room came in time.
    pub async fn reserve(&self, bytes: u64, within: Duration) -> Result<Room, WriteError> {
        let units = (self.cost(bytes).div_ceil(UNIT))
            .min(self.max_bytes / UNIT)
            .max(1);
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        match tokio::time::timeout(within, self.sem.clone().acquire_many_owned(units)).await {
            Ok(Ok(p)) => Ok(Room(p)),
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

    #[tokio::test(flavor = "current_thread")]
    async fn room_is_held_until_dropped() {
        let probe = Inflight::new(1 << 40, 1000);
        let budget = Inflight::new(probe.cost(1024 * 1024) * 2 + 4096, 1000);
        let a = budget
            .reserve(1024 * 1024, Duration::from_secs(1))
            .await
            .unwrap();
        let _b = budget
            .reserve(1024 * 1024, Duration::from_secs(1))
            .await
            .unwrap();
        let full = budget.reserve(1024 * 1024, Duration::from_millis(20)).await;
        assert!(
            matches!(full, Err(WriteError::Overloaded { .. })),
            "{full:?}"
        );
        drop(a);
        assert!(budget
            .reserve(1024 * 1024, Duration::from_millis(20))
            .await
            .is_ok());
    }
}
