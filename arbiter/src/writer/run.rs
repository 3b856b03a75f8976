//! The writer thread's loop: it sleeps until something is queued, serves
//! the queue, and watches the sessions it serves (`commit.rs` commits a
//! group).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scribe_protocol::Reply;

use super::link::SessionLink;
use super::queue::Queue;
use super::reply::{Answers, Held};
use super::session::{Serving, SessionLimits};
use super::stage::Stage;
use super::syncer::Syncer;
use super::{Item, Job, Msg, ReplyTo, Settings};
use crate::group::Session;
use crate::requests::Retention;
use crate::stats::Stats;

pub(super) struct Writer {
    pub(super) session: Session,
    pub(super) stats: Arc<Stats>,
    pub(super) retention: Retention,
    pub(super) prune_every: Duration,
    pub(super) last_prune: Option<Instant>,
    max_group: usize,
    syncer: Option<Syncer>,
    answers: Answers,
    pub(super) session_limits: SessionLimits,
    /// Items taken from the queue and not yet done, in order: kept here
    /// rather than on the writer thread's stack, since the thread leaves
    /// the writer unlocked while a session is served.
    pub(super) waiting: VecDeque<Item>,
    /// A stop was taken from the queue: exit once `waiting` is done.
    pub(super) stop_taken: bool,
    /// The write session being served, if any.
    pub(super) serving: Option<Serving>,
    /// The writer thread has stopped: nothing more commits.
    pub(super) finished: bool,
    /// A housekeeping tick was taken from the queue while a session was
    /// served: the next drain prunes.
    pub(super) tick_missed: bool,
    /// The served session's link, for the stage to nudge (shared with
    /// it: the stage does not lock the writer to find it).
    pub(super) watched: Arc<Mutex<Option<Arc<SessionLink>>>>,
}

/// How [`Writer::drain`] left the writer.
enum Drained {
    /// Nothing is waiting.
    Idle,
    /// A stop was taken and everything before it is done.
    Stopped,
    /// A write session began: serve it before anything else.
    Session(Arc<SessionLink>),
}

fn lock(writer: &Mutex<Writer>) -> std::sync::MutexGuard<'_, Writer> {
    writer.lock().unwrap_or_else(|p| p.into_inner())
}

/// The writer thread: sleeps until something is queued, then serves the
/// queue with the writer locked; unlocked and idle, the writer is free for
/// [`Writer::commit_here`]. While a session is served the writer is left
/// unlocked too, for its calls to run on the adapters' thread.
pub(super) fn serve(writer: &Mutex<Writer>, rx: &Queue<Msg>, stage: &Stage) {
    let mut more = false;
    loop {
        if !more {
            rx.wait();
        }
        // Woken from idle: what it finds did not wait behind anything.
        let drained = lock(writer).drain(rx, stage, !more);
        more = match drained {
            Drained::Idle => false,
            Drained::Stopped => {
                lock(writer).finish();
                return;
            }
            Drained::Session(link) => {
                attend(writer, &link, rx, stage);
                true
            }
        };
    }
}

/// Watches a served session with the writer unlocked: runs the calls that
/// came through its link (the adapters' thread could not run them), ends
/// it when its lease lapses, answers what waits behind it past its own
/// limit (`overdue.rs`), and returns once it is over.
fn attend(writer: &Mutex<Writer>, link: &SessionLink, rx: &Queue<Msg>, stage: &Stage) {
    // What was queued before the session was watched has limits too (the
    // stage nudges only a watched session's link).
    let mut until = lock(writer).look_at(link.id, rx, stage);
    while let Some(at) = until {
        let op = link.next(at);
        let mut w = lock(writer);
        w.lapse_if_due();
        if let Some(op) = op {
            if w.serves(link.id) {
                // No slice on this thread: nothing is given back.
                let _ = w.call(op, false);
            } else {
                w.refuse(op, &link.why());
            }
            link.ran();
        }
        until = w.look_at(link.id, rx, stage);
    }
}

impl Writer {
    pub(super) fn new(
        mut session: Session,
        stats: Arc<Stats>,
        settings: &Settings,
        syncer: Option<Syncer>,
    ) -> Writer {
        session.keys.publish(stats.keys_counter());
        Writer {
            session,
            stats,
            retention: settings.retention,
            prune_every: settings.prune_every,
            last_prune: None,
            max_group: settings.max_group.max(1),
            syncer,
            answers: settings.answers.clone(),
            session_limits: settings.sessions,
            waiting: VecDeque::new(),
            stop_taken: false,
            serving: None,
            finished: false,
            tick_missed: false,
            watched: Arc::default(),
        }
    }

    /// Hands answers over: once the syncer's next sync is done when
    /// `durable` (and commits need one), else from this thread when
    /// `here` (the adapters'), else to the adapters' dispatcher.
    pub(super) fn deliver(&self, answers: Held, here: bool, durable: bool) {
        match &self.syncer {
            Some(syncer) if durable => syncer.after_sync(answers),
            _ if here => Answers::Here.send(answers),
            _ => self.answers.send(answers),
        }
    }

    /// Sends one answer now: from this thread when `here` (the
    /// adapters'), else handed to the adapters.
    pub(super) fn answer(&self, to: ReplyTo, reply: Reply, here: bool) {
        self.deliver(vec![(to, reply)], here, false);
    }

    /// Runs `f` on this writer from the adapters' thread. A panic must not
    /// take the adapters' task (and every later write) with it: it is
    /// logged, the callers concerned learn nothing (their calls time out
    /// as "outcome unknown"), the next transaction starts with a rollback,
    /// and the writer thread is told to look at what was left.
    pub(super) fn guarded(&mut self, rx: &Queue<Msg>, what: &str, f: impl FnOnce(&mut Writer)) {
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        if done.is_err() {
            tracing::error!(what, "work on the socket thread panicked");
            self.session.budget.reset();
            // A session's transaction may now hold what its caller was
            // never told, nor its history kept: it cannot go on.
            self.end_session("the arbiter failed while running one of its calls".into());
            self.poke_if_left(rx);
        }
    }

    /// Free for work on the adapters' thread: running, serving no session,
    /// with nothing taken from the queue still to serve.
    pub(super) fn idle(&self) -> bool {
        !self.finished && !self.stop_taken && self.serving.is_none() && self.waiting.is_empty()
    }

    /// Sends one answer once what it reports is on disk (at once when
    /// commits need no sync).
    pub(super) fn answer_durably(&self, to: ReplyTo, reply: Reply, here: bool) {
        self.deliver(vec![(to, reply)], here, true);
    }

    /// Serves what the queue holds, then returns how it left the writer.
    /// Runs with the writer locked, so the adapters' thread commits nothing
    /// meanwhile.
    fn drain(&mut self, rx: &Queue<Msg>, stage: &Stage, mut fresh: bool) -> Drained {
        // A session begun on the adapters' thread: watch it first.
        if let Some(link) = self.served() {
            return Drained::Session(link);
        }
        loop {
            if self.waiting.is_empty() {
                if self.stop_taken {
                    return Drained::Stopped;
                }
                match rx.try_recv() {
                    None => {
                        if std::mem::take(&mut self.tick_missed) {
                            self.maybe_prune();
                        }
                        return Drained::Idle;
                    }
                    Some(Msg::Jobs(jobs)) => self.waiting.extend(jobs),
                    Some(Msg::Tick) => self.maybe_prune(),
                    Some(Msg::Attend) => {}
                    Some(Msg::Stop) => self.stop_taken = true,
                }
            }
            // The group is what has come by now: waiting for more (about
            // as many as recent groups held) cost more than the larger
            // groups saved (see BENCHMARKS.md, "Tried").
            while !self.stop_taken && self.waiting.len() < self.max_group {
                let Some(msg) = rx.try_recv() else {
                    break;
                };
                match msg {
                    Msg::Jobs(jobs) => self.waiting.extend(jobs),
                    Msg::Tick | Msg::Attend => {}
                    Msg::Stop => self.stop_taken = true,
                }
            }
            // What waited past its own limit (behind a migration, a long
            // group, a session) does not start now; the first group after
            // the writer thread woke from idle waited for nothing but its
            // wakeup.
            if !std::mem::take(&mut fresh) {
                self.refuse_overdue(stage);
            }
            // The writes at the front form a group; a session (or a
            // replayed commit) waits for the group before it, and the
            // writes behind it wait for it.
            let writes = self
                .waiting
                .iter()
                .take(self.max_group)
                .take_while(|i| matches!(i, Item::Write(_)))
                .count();
            if writes > 0 {
                let group: Vec<Job> = self
                    .waiting
                    .drain(..writes)
                    .filter_map(Item::into_job)
                    .collect();
                stage.queued.fetch_sub(writes, Ordering::AcqRel);
                // No slice on this thread (one set on the adapters' is
                // cleared there, a panic included): every write is
                // answered, nothing is left.
                let left = self.commit_group(group, false);
                debug_assert!(left.is_empty(), "a slice cut the writer thread short");
            } else if let Some(item) = self.waiting.pop_front() {
                stage.queued.fetch_sub(1, Ordering::AcqRel);
                match item {
                    Item::Begin(link, to) => {
                        if self.begin_serving(link.clone(), to, false) {
                            return Drained::Session(link);
                        }
                    }
                    Item::Replay(key, to) => self.replay_commit(&key, to),
                    Item::Migrate(list, to) => self.migrate(&list, to),
                    Item::Write(_) => {}
                }
            }
        }
    }

    /// After the stop: syncs what is left and truncates the WAL; nothing
    /// commits after this.
    fn finish(&mut self) {
        self.finished = true;
        if let Some(mut s) = self.syncer.take() {
            s.finish();
        }
        self.checkpoint();
    }
}
