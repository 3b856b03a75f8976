//! The writer's queue: a mutex, a condition variable, and no spinning.
//!
//! The standard channel spins and yields for a while before it sleeps;
//! on two cores that is CPU taken from the callers, every time the writer
//! goes idle. This queue puts the writer to sleep at once, and wakes it
//! (a system call) only when it is asleep.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

#[derive(Debug)]
struct State<T> {
    msgs: VecDeque<T>,
    /// The writer has exited: nothing more is taken.
    closed: bool,
    /// The writer sleeps on the condition variable.
    asleep: bool,
    /// [`Queue::nudge`] was called: the next `recv` returns at once.
    nudged: bool,
}

/// Messages for the writer (or the syncer).
#[derive(Debug)]
pub(crate) struct Queue<T> {
    state: Mutex<State<T>>,
    wake: Condvar,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            state: Mutex::new(State {
                msgs: VecDeque::new(),
                closed: false,
                asleep: false,
                nudged: false,
            }),
            wake: Condvar::new(),
        }
    }
}

impl<T> Queue<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a message; gives it back when the writer has exited.
    pub(crate) fn send(&self, msg: T) -> Result<(), T> {
        self.put(msg, false)
    }

    /// Queues a message ahead of every other; gives it back when the
    /// receiver has exited.
    pub(crate) fn push_front(&self, msg: T) -> Result<(), T> {
        self.put(msg, true)
    }

    fn put(&self, msg: T, front: bool) -> Result<(), T> {
        let mut s = self.lock();
        if s.closed {
            return Err(msg);
        }
        if front {
            s.msgs.push_front(msg);
        } else {
            s.msgs.push_back(msg);
        }
        self.wake_receiver(s);
        Ok(())
    }

    /// Releases the lock, then wakes the receiver if it sleeps (a system
    /// call spared when it does not).
    fn wake_receiver(&self, s: MutexGuard<'_, State<T>>) {
        let asleep = s.asleep;
        drop(s);
        if asleep {
            self.wake.notify_one();
        }
    }

    /// The next message, waiting for one until `until` (for ever when
    /// `None`); `None` when the wait ended empty, after a nudge, or when
    /// the queue is closed.
    pub(crate) fn recv(&self, until: Option<Instant>) -> Option<T> {
        let mut s = self.lock();
        loop {
            if let Some(m) = s.msgs.pop_front() {
                return Some(m);
            }
            if s.closed {
                return None;
            }
            if std::mem::take(&mut s.nudged) {
                return None;
            }
            s.asleep = true;
            s = match until {
                None => self.wake.wait(s).unwrap_or_else(|p| p.into_inner()),
                Some(t) => {
                    let left = t.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        s.asleep = false;
                        return None;
                    }
                    self.wake
                        .wait_timeout(s, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
            s.asleep = false;
        }
    }

    /// Makes the receiver's current or next [`Queue::recv`] return,
    /// empty handed if nothing is queued: it has something else to look
    /// at.
    pub(crate) fn nudge(&self) {
        let mut s = self.lock();
        s.nudged = true;
        self.wake_receiver(s);
    }

    /// The next message if one is queued.
    pub(crate) fn try_recv(&self) -> Option<T> {
        self.lock().msgs.pop_front()
    }

    /// Sleeps until a message is queued (or the queue is closed), taking
    /// nothing.
    pub(crate) fn wait(&self) {
        let mut s = self.lock();
        while s.msgs.is_empty() && !s.closed {
            s.asleep = true;
            s = self.wake.wait(s).unwrap_or_else(|p| p.into_inner());
            s.asleep = false;
        }
    }

    /// True when nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().msgs.is_empty()
    }

    /// Nothing more is taken (the receiver has exited, or a session
    /// ended): refuses what comes next, returns what was left, and wakes
    /// a receiver still waiting.
    pub(crate) fn close(&self) -> Vec<T> {
        let mut s = self.lock();
        s.closed = true;
        let left = s.msgs.drain(..).collect();
        let asleep = s.asleep;
        drop(s);
        if asleep {
            self.wake.notify_all();
        }
        left
    }
}
