//! Counters behind `status`, written by the writer thread and read by the
//! RPC side; atomics except for the small window of recent commit times.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// How many recent commit durations are kept for percentiles.
const RECENT: usize = 1024;

/// The writer's counters.
#[derive(Debug)]
pub struct Stats {
    commits: AtomicU64,
    writes: AtomicU64,
    failed: AtomicU64,
    grouped: AtomicU64,
    replayed: AtomicU64,
    overloaded: AtomicU64,
    max_group: AtomicU64,
    seq: AtomicU64,
    /// Tells waiters (`POST /v1/wait`) about each new commit.
    seq_tx: tokio::sync::watch::Sender<u64>,
    /// When the running group began (µs after `base`), 0 when idle.
    group_began_us: AtomicU64,
    base: std::sync::OnceLock<std::time::Instant>,
    recent_us: Mutex<VecDeque<u64>>,
    last_error: Mutex<Option<String>>,
    /// Syncs of the WAL (`--synchronous full`) and their total time.
    syncs: AtomicU64,
    sync_us: AtomicU64,
    /// The write session being served, and when it began.
    session: Mutex<Option<(scribe_protocol::SessionInfo, std::time::Instant)>>,
    /// The program's schema version (its last applied migration).
    schema_version: AtomicU64,
    /// Idempotency keys held (the key index publishes it at each commit).
    keys: std::sync::Arc<AtomicU64>,
}

/// A consistent-enough copy of the counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Commits done.
    pub commits: u64,
    /// Batches committed.
    pub writes: u64,
    /// Batches rolled back alone.
    pub failed: u64,
    /// Batches answered from their idempotency key (nothing written).
    pub replayed: u64,
    /// Writes refused because the queue was full.
    pub overloaded: u64,
    /// Mean batches (committed or rolled back alone) per commit.
    pub mean_group: f64,
    /// Largest group.
    pub max_group: u64,
    /// Last committed sequence.
    pub seq: u64,
    /// Median commit duration, µs.
    pub p50_us: u64,
    /// 99th percentile commit duration, µs.
    pub p99_us: u64,
    /// Last error met by the writer.
    pub last_error: Option<String>,
}

impl Stats {
    /// Starts counting from a recovered sequence number.
    pub fn new(seq: u64) -> Self {
        Stats {
            commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            grouped: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            max_group: AtomicU64::new(0),
            seq: AtomicU64::new(seq),
            seq_tx: tokio::sync::watch::channel(seq).0,
            group_began_us: AtomicU64::new(0),
            base: std::sync::OnceLock::new(),
            recent_us: Mutex::new(VecDeque::with_capacity(RECENT)),
            last_error: Mutex::new(None),
            schema_version: AtomicU64::new(0),
            keys: std::sync::Arc::default(),
            syncs: AtomicU64::new(0),
            sync_us: AtomicU64::new(0),
            session: Mutex::new(None),
        }
    }

    /// Follows the committed sequence number.
    pub fn subscribe_seq(&self) -> tokio::sync::watch::Receiver<u64> {
        self.seq_tx.subscribe()
    }

    /// The program's schema version is now `v`.
    pub fn set_schema_version(&self, v: u64) {
        self.schema_version.store(v, Relaxed);
    }

    /// The program's schema version.
    pub fn schema_version(&self) -> u64 {
        self.schema_version.load(Relaxed)
    }

    /// Where the key index publishes how many keys it holds.
    pub fn keys_counter(&self) -> std::sync::Arc<AtomicU64> {
        self.keys.clone()
    }

    /// Idempotency keys held.
    pub fn keys(&self) -> u64 {
        self.keys.load(Relaxed)
    }

    /// A commit of `ok` batches (and `failed` rolled back alone) as `seq`.
    pub fn commit(&self, seq: u64, ok: u64, failed: u64, took: Duration) {
        self.seq.store(seq, Relaxed);
        self.seq_tx.send_replace(seq);
        self.commits.fetch_add(1, Relaxed);
        self.writes.fetch_add(ok, Relaxed);
        self.failed.fetch_add(failed, Relaxed);
        self.grouped.fetch_add(ok + failed, Relaxed);
        self.max_group.fetch_max(ok + failed, Relaxed);
        self.push_time(took);
    }

    /// Notes the write session that began (or that none is open).
    pub fn session(&self, info: Option<scribe_protocol::SessionInfo>) {
        *self.session.lock().unwrap_or_else(|p| p.into_inner()) =
            info.map(|i| (i, std::time::Instant::now()));
    }

    /// Counts a statement of the open session.
    pub fn session_statement(&self) {
        if let Some((i, _)) = &mut *self.session.lock().unwrap_or_else(|p| p.into_inner()) {
            i.statements += 1;
        }
    }

    /// The open session, as `status` shows it.
    pub fn open_session(&self) -> Option<scribe_protocol::SessionInfo> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(i, began)| scribe_protocol::SessionInfo {
                age_ms: began.elapsed().as_millis() as u64,
                ..i.clone()
            })
    }

    /// Records one sync of the WAL.
    pub fn synced(&self, took: Duration) {
        self.syncs.fetch_add(1, Relaxed);
        self.sync_us
            .fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    /// Syncs of the WAL so far, and their mean time in µs.
    pub fn syncs(&self) -> (u64, u64) {
        let n = self.syncs.load(Relaxed);
        (n, self.sync_us.load(Relaxed) / n.max(1))
    }

    /// Records batches that failed without any commit.
    pub fn failed(&self, n: u64) {
        self.failed.fetch_add(n, Relaxed);
    }

    /// Marks the start (`true`) or end of a group, for `writing_for`.
    pub fn writing(&self, busy: bool) {
        let base = self.base.get_or_init(std::time::Instant::now);
        let now = if busy {
            base.elapsed().as_micros().max(1) as u64
        } else {
            0
        };
        self.group_began_us.store(now, Relaxed);
    }

    /// How long the running group has been running (zero when idle): a
    /// long figure means a slow batch holds the writer.
    pub fn writing_for(&self) -> Duration {
        let began = self.group_began_us.load(Relaxed);
        match (began, self.base.get()) {
            (0, _) | (_, None) => Duration::ZERO,
            (b, Some(base)) => base.elapsed().saturating_sub(Duration::from_micros(b)),
        }
    }

    /// Records a write refused because the queue was full.
    pub fn overloaded(&self) {
        self.overloaded.fetch_add(1, Relaxed);
    }

    /// Records batches answered from their idempotency key.
    pub fn replayed(&self, n: u64) {
        self.replayed.fetch_add(n, Relaxed);
    }

    /// Remembers the writer's latest error.
    pub fn error(&self, e: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    fn push_time(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let mut r = self.recent_us.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() == RECENT {
            r.pop_front();
        }
        r.push_back(us);
    }

    /// The last committed sequence number.
    pub fn seq(&self) -> u64 {
        self.seq.load(Relaxed)
    }

    /// A hint of when a caller refused with `Overloaded` may succeed:
    /// the time to commit what is queued, from recent commit durations.
    ///
    /// It is answered to every refused caller, so it stays cheap: the mean
    /// of the recent commit times (no sort, no copy) times the groups queued.
    pub fn retry_after_ms(&self, queued: u64) -> u64 {
        let commits = self.commits.load(Relaxed).max(1);
        let mean_group = (self.grouped.load(Relaxed) as f64 / commits as f64).max(1.0);
        let groups = (queued as f64 / mean_group).ceil() as u64;
        let mean_us = {
            let r = self.recent_us.lock().unwrap_or_else(|p| p.into_inner());
            r.iter().sum::<u64>() / (r.len() as u64).max(1)
        };
        // A slow group in progress will likely take as long again.
        let running = self.writing_for().as_millis() as u64;
        (groups * mean_us.max(100) / 1000)
            .max(running)
            .clamp(1, 5_000)
    }

    /// Copies the counters.
    pub fn snapshot(&self) -> Snapshot {
        let commits = self.commits.load(Relaxed);
        let writes = self.writes.load(Relaxed);
        let failed = self.failed.load(Relaxed);
        let (p50_us, p99_us) = {
            let r = self.recent_us.lock().unwrap_or_else(|p| p.into_inner());
            let mut v: Vec<u64> = r.iter().copied().collect();
            v.sort_unstable();
            (percentile(&v, 50), percentile(&v, 99))
        };
        Snapshot {
            commits,
            writes,
            failed,
            replayed: self.replayed.load(Relaxed),
            overloaded: self.overloaded.load(Relaxed),
            mean_group: if commits == 0 {
                0.0
            } else {
                self.grouped.load(Relaxed) as f64 / commits as f64
            },
            max_group: self.max_group.load(Relaxed),
            seq: self.seq(),
            p50_us,
            p99_us,
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) * p).div_ceil(100)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_group_counts_every_batch_of_a_commit() {
        let s = Stats::new(7);
        s.commit(8, 3, 1, Duration::from_micros(200));
        s.commit(9, 2, 0, Duration::from_micros(400));
        s.failed(5);
        let snap = s.snapshot();
        assert_eq!(snap.seq, 9);
        assert_eq!(snap.commits, 2);
        assert_eq!(snap.writes, 5);
        assert_eq!(snap.failed, 6);
        assert!((snap.mean_group - 3.0).abs() < 1e-9);
        assert_eq!(snap.max_group, 4);
        assert_eq!(snap.p50_us, 400);
    }
}
