//! Who may hold a connection, and how many: the admission of every
//! accepted connection, on both sockets.
//!
//! Three rules, in order: the peer must be allowed (`SO_PEERCRED`: the
//! arbiter's own uid, root's, which may do anything to the file anyway,
//! one of `--allow-uid`, or a member of an `--allow-group`: see
//! [`crate::allowed`]);
//! the arbiter serves at most `max_connections` at once; and one peer
//! process holds at most `max_peer_connections` of them, so a single
//! careless or hostile process cannot take the capacity every other
//! caller needs. A refusal for capacity is told to the caller (as
//! `Overloaded`, naming the cap) before the connection closes.
//!
//! Descriptors are counted too: a connection holds one, and an HTTP
//! connection's hang-up watch a second ([`Peers::spare_descriptor`]).
//! Counted as connections only, 140 HTTP callers under a 300-file limit
//! took every descriptor: no caller on either socket was answered, and
//! statements that spill to a temp file failed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use scribe_protocol::WriteError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tracing::{debug, warn};

use crate::allowed::Allowed;
use crate::warn_limit::WarnLimit;

/// Connection counts, shared by both listeners.
#[derive(Debug)]
pub struct Peers {
    allowed: Allowed,
    max_total: usize,
    max_per_peer: usize,
    /// Descriptors connections may hold in all (see `fdlimit`).
    descriptors: usize,
    open: Mutex<Counts>,
    /// Refusals being answered now (each holds its socket a moment): for
    /// capacity, and for a uid not allowed, counted apart so that a flood
    /// of the one never silences the other.
    refusing: [Arc<AtomicUsize>; 2],
    /// Refusals' log lines, one a second per kind and uid.
    warned: WarnLimit,
}

/// Most refusals answered at once; past it a refused connection is
/// closed without an answer, so that a flood of them cannot take the
/// descriptors the admitted callers need.
const MAX_REFUSING: usize = 64;

/// How long a refused connection is waited for, each way: a well-behaved
/// client sends its preamble and reads at once.
pub const REFUSAL_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// Writes a refusal's answer and closes, reading what the caller sends
/// meanwhile (its hello, its request) until it hangs up: closed under
/// its feet, its write would fail before it read the answer. All within
/// [`REFUSAL_WAIT`].
pub async fn say_and_hang_up(stream: &mut UnixStream, answer: &[u8]) {
    let send = async {
        stream.write_all(answer).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(REFUSAL_WAIT, send).await;
}

/// A refusal's place among those answered at once; dropping it frees it.
#[derive(Debug)]
pub struct Refusing(Arc<AtomicUsize>);

impl Drop for Refusing {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Second descriptors held (hang-up watches).
    spares: usize,
    by_pid: HashMap<i32, usize>,
}

impl Counts {
    fn descriptors(&self) -> usize {
        self.total + self.spares
    }
}

/// A second descriptor's place, for a connection's hang-up watch;
/// dropping it frees the place.
#[derive(Debug)]
pub struct Spare(Arc<Peers>);

impl Drop for Spare {
    fn drop(&mut self) {
        let mut c = self.0.lock();
        c.spares = c.spares.saturating_sub(1);
    }
}

/// Holds one admitted connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Admitted {
    peers: Arc<Peers>,
    pid: i32,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut c = self.peers.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_pid.get_mut(&self.pid) {
            *n -= 1;
            if *n == 0 {
                c.by_pid.remove(&self.pid);
            }
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The credentials could not be read: closed without a word.
    Stranger,
    /// The uid is not allowed: it is told so, and how to be let in (it
    /// reached the socket, so it may see the database's files already).
    NotAllowed(String),
    /// A capacity is full: the caller is told which.
    Full(String),
}

impl Peers {
    /// Counts for connections of the `allowed`, under the two caps and
    /// `descriptors` in all.
    pub fn new(
        allowed: Allowed,
        max_total: usize,
        max_per_peer: usize,
        descriptors: usize,
    ) -> Arc<Peers> {
        Arc::new(Peers {
            allowed,
            max_total: max_total.max(1),
            max_per_peer: max_per_peer.max(1),
            descriptors: descriptors.max(1),
            open: Mutex::new(Counts::default()),
            refusing: [Arc::default(), Arc::default()],
            warned: WarnLimit::default(),
        })
    }

    /// How to answer `refusal`: a place to answer it in and the error
    /// it is told (`Overloaded`, retry after `retry_after_ms`, for a cap;
    /// `Refused` for a uid), unless it is a stranger's or as many of its
    /// kind are being answered as may be (`None`: close without a word).
    pub fn refusing(
        &self,
        refusal: Refusal,
        retry_after_ms: u64,
    ) -> Option<(Refusing, WriteError)> {
        let (kind, error) = match refusal {
            Refusal::Stranger => return None,
            Refusal::Full(reason) => (
                0,
                WriteError::Overloaded {
                    reason,
                    retry_after_ms,
                },
            ),
            Refusal::NotAllowed(reason) => (
                1,
                WriteError::Refused {
                    statement: None,
                    reason,
                },
            ),
        };
        let count = &self.refusing[kind];
        let n = count.fetch_add(1, Ordering::AcqRel);
        let place = Refusing(count.clone());
        (n < MAX_REFUSING).then_some((place, error))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().total
    }

    /// A place for a second descriptor, while the connections' own leave
    /// one free (`None`: do without).
    pub fn spare_descriptor(self: &Arc<Self>) -> Option<Spare> {
        let mut c = self.lock();
        (c.descriptors() < self.descriptors).then(|| {
            c.spares += 1;
            Spare(self.clone())
        })
    }

    /// Admits `stream` or says why not (and logs the refusal with the
    /// peer's uid and pid).
    ///
    /// # Errors
    ///
    /// The refusal.
    pub fn admit(self: &Arc<Self>, stream: &UnixStream) -> Result<Admitted, Refusal> {
        let cred = stream.peer_cred().map_err(|e| {
            warn!(error = %e, "refused connection: no peer credentials");
            Refusal::Stranger
        })?;
        let (uid, pid) = (cred.uid(), cred.pid().unwrap_or(0));
        if !self.allowed.admits(stream, uid, cred.gid()) {
            if let Some(unlogged) = self.warned.check("uid", uid) {
                warn!(
                    uid,
                    pid, unlogged, "refused connection from a uid that is not allowed"
                );
            }
            return Err(Refusal::NotAllowed(format!(
                "uid {uid} may not write through this arbiter (it runs as uid {}): add \
                 `allow-uid = {uid}` (or `allow-group = GROUP`, a group of uid {uid}'s) to the \
                 database's .scribe.conf (or start scribed with --allow-uid {uid}) and restart it",
                nix::unistd::getuid()
            )));
        }
        let mut c = self.lock();
        let short = c.descriptors() >= self.descriptors;
        if c.total >= self.max_total || short {
            if let Some(unlogged) = self.warned.check("total", uid) {
                warn!(
                    uid,
                    pid,
                    unlogged,
                    max_connections = self.max_total,
                    open = c.total,
                    descriptors = c.descriptors(),
                    "refused a connection: too many open"
                );
            }
            let held = if short {
                format!(
                    "{} connections, with {} HTTP hang-up watches, all its open-files limit \
                     holds (raise the arbiter's `ulimit -n`)",
                    c.total, c.spares
                )
            } else {
                format!(
                    "{}, scribed --max-connections, or what its open-files limit holds",
                    self.max_total
                )
            };
            return Err(Refusal::Full(format!(
                "the arbiter serves its most connections at once ({held})"
            )));
        }
        let mine = c.by_pid.get(&pid).copied().unwrap_or(0);
        if mine >= self.max_per_peer {
            if let Some(unlogged) = self.warned.check("peer", uid) {
                warn!(
                    uid,
                    pid,
                    unlogged,
                    max_peer_connections = self.max_per_peer,
                    "refused a connection: one process holds too many"
                );
            }
            return Err(Refusal::Full(format!(
                "process {pid} already holds {mine} connections, the most one process may hold \
                 (scribed --max-peer-connections)"
            )));
        }
        c.total += 1;
        *c.by_pid.entry(pid).or_default() += 1;
        debug!(uid, pid, "connection");
        Ok(Admitted {
            peers: self.clone(),
            pid,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uids(uid: u32) -> Allowed {
        Allowed {
            uids: vec![uid],
            gids: vec![],
        }
    }

    #[test]
    fn refusals_answered_at_once_are_capped() {
        let peers = Peers::new(Allowed::default(), 5, 2, usize::MAX);
        let uid = || Refusal::NotAllowed("uid".into());
        let cap = || Refusal::Full("cap".into());
        let places: Vec<_> = (0..MAX_REFUSING)
            .map(|_| peers.refusing(uid(), 1))
            .collect();
        assert!(places.iter().all(Option::is_some));
        assert!(
            peers.refusing(uid(), 1).is_none(),
            "past the cap: closed without a word"
        );
        assert!(
            matches!(
                peers.refusing(cap(), 1),
                Some((_, WriteError::Overloaded { .. }))
            ),
            "a flood of strangers leaves capacity refusals their answer"
        );
        assert!(peers.refusing(Refusal::Stranger, 1).is_none());
        drop(places);
        assert!(peers.refusing(uid(), 1).is_some(), "places are freed");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_process_cannot_take_every_place() {
        let me = nix::unistd::getuid().as_raw();
        let peers = Peers::new(uids(me), 5, 2, usize::MAX);
        let mut held = Vec::new();
        let mut refusals = Vec::new();
        for _ in 0..4 {
            let (a, _b) = UnixStream::pair().unwrap();
            match peers.admit(&a) {
                Ok(g) => held.push((g, a, _b)),
                Err(r) => refusals.push(r),
            }
        }
        assert_eq!(held.len(), 2);
        assert!(
            matches!(&refusals[0], Refusal::Full(m) if m.contains("--max-peer-connections")),
            "{refusals:?}"
        );
        held.pop();
        assert_eq!(peers.open(), 1);
        let (a, _b) = UnixStream::pair().unwrap();
        assert!(peers.admit(&a).is_ok(), "a freed place is free again");
        let stranger = Peers::new(uids(me + 1), 5, 2, usize::MAX);
        match stranger.admit(&a) {
            // Root is let in whatever the list says.
            Ok(_) => assert_eq!(me, 0),
            Err(Refusal::NotAllowed(m)) => {
                assert!(m.contains(&format!("allow-uid = {me}")), "{m}");
            }
            Err(other) => panic!("{other:?}"),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn second_descriptors_count_against_the_limit() {
        let me = nix::unistd::getuid().as_raw();
        let peers = Peers::new(uids(me), 10, 10, 4);
        let pairs: Vec<_> = (0..3).map(|_| UnixStream::pair().unwrap()).collect();
        let a = peers.admit(&pairs[0].0).unwrap();
        let b = peers.admit(&pairs[1].0).unwrap();
        let watch = peers.spare_descriptor().expect("3 of 4");
        let last = peers.spare_descriptor().expect("4 of 4");
        assert!(peers.spare_descriptor().is_none(), "none past the limit");
        assert!(
            matches!(peers.admit(&pairs[2].0), Err(Refusal::Full(_))),
            "a connection's descriptor is counted with the watches'"
        );
        drop(last);
        let c = peers.admit(&pairs[2].0).expect("a freed descriptor");
        assert!(peers.spare_descriptor().is_none());
        drop((a, b, c, watch));
        assert!(peers.spare_descriptor().is_some());
    }
}
