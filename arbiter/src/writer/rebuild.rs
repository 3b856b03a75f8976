//! A write session's statement cut short on the adapters' thread.
//!
//! A session's calls run on the adapters' thread when the writer is free
//! (see `session.rs`), and that thread serves every connection: a
//! statement may run there for [`HERE_SLICE`] at most. Past it SQLite is
//! interrupted and the call goes to the writer thread, which runs it
//! again under the session's lease; the session's later calls stay there.
//! Interrupting a write makes SQLite roll the whole transaction back, and
//! an interrupt can also come as a finished statement returns (SQLite
//! then reports it, yet keeps the statement's changes), so the writer
//! thread always puts the transaction back first: it rolls back what is
//! left, begins again and runs the session's statements so far, in
//! order, each of which must tell what it told the caller the first time
//! (same rows, counts and rowid, or the same error). Nothing else wrote
//! in between (the session held the writer), so only a statement whose
//! result changes from one run to the next can tell otherwise
//! (`random()`, the clock, `changes()` or `total_changes()` before the
//! session's first write, an error such as a full disk that does not
//! come again); the session then ends, rolled back, as when its lease
//! lapses, saying why.
//!
//! The statements are kept for that, up to [`KEEP_BYTES`] of SQL and
//! parameters; a session past it runs its later calls on the writer
//! thread, where no slice applies.
//!
//! Between SQLite's rollback and the new `BEGIN` the file's write lock is
//! free for an instant: only a process writing the file behind the
//! arbiter's back could take it (and make the begin fail, which ends the
//! session); such a process could write between any two commits anyway.

use std::hash::{Hash, Hasher};
use std::time::Instant;

use scribe_protocol::{Statement, StatementResult, Value, WriteError};

use super::commit::HERE_SLICE;
use super::run::Writer;
use super::session::Serving;
use crate::exec;

/// Most bytes of SQL text and parameters a session keeps to run again.
pub(super) const KEEP_BYTES: usize = 8 << 20;

/// The statements a session has run, with a fingerprint of what each
/// told the caller.
#[derive(Debug, Default)]
pub(super) struct History {
    /// Each statement, its index in its call (its errors name it), and
    /// what it told.
    ran: Vec<(Statement, u32, u64)>,
    bytes: usize,
}

impl History {
    /// Keeps `st` and its outcome; false (and nothing kept) once the
    /// session is past [`KEEP_BYTES`].
    fn keep(
        &mut self,
        st: Statement,
        index: u32,
        outcome: &Result<StatementResult, WriteError>,
    ) -> bool {
        self.bytes += size(&st);
        if self.bytes > KEEP_BYTES {
            return false;
        }
        self.ran.push((st, index, fingerprint(outcome)));
        true
    }
}

impl Serving {
    /// Keeps a statement the session ran, while its statements are kept
    /// (a rebuild takes them); past [`KEEP_BYTES`] it keeps none from then
    /// on, and is pinned to the writer thread: it could not be put back,
    /// so it must never be cut short.
    pub(super) fn keep(
        &mut self,
        st: Statement,
        index: u32,
        outcome: &Result<StatementResult, WriteError>,
    ) {
        if let Some(h) = &mut self.history {
            if !h.keep(st, index, outcome) {
                self.history = None;
                self.pinned = true;
            }
        }
    }
}

fn size(st: &Statement) -> usize {
    let value = |v: &Value| match v {
        Value::Text(t) => t.len() + 16,
        Value::Blob(b) => b.len() + 16,
        _ => 16,
    };
    let params: usize = match &st.params {
        scribe_protocol::Params::None => 0,
        scribe_protocol::Params::Positional(vs) => vs.iter().map(value).sum(),
        scribe_protocol::Params::Named(vs) => vs.iter().map(|(n, v)| n.len() + value(v)).sum(),
    };
    st.sql.len() + params + 64
}

/// True when `sql` may hold a RETURNING clause (a word of the text:
/// one in a string literal only costs a savepoint).
fn mentions_returning(sql: &str) -> bool {
    sql.as_bytes()
        .windows(9)
        .any(|w| w.eq_ignore_ascii_case(b"returning"))
}

/// What a statement told its caller, as one number.
fn fingerprint(outcome: &Result<StatementResult, WriteError>) -> u64 {
    match outcome {
        Ok(r) => r.fingerprint(),
        Err(e) => {
            // A fixed-key hasher: the same error text, the same number.
            let mut h = std::collections::hash_map::DefaultHasher::new();
            e.to_string().hash(&mut h);
            h.finish() ^ 1
        }
    }
}

impl Writer {
    /// Runs `st` (the served session's statement number `index`) under
    /// the session's lease, which ends at `total`, and for [`HERE_SLICE`]
    /// at most when `sliced` (on the adapters' thread, every statement of
    /// the session kept). Returns its outcome and whether the lease cut it
    /// short, or `None` when the slice did (the statement is to run again
    /// on the writer thread).
    pub(super) fn run_statement(
        &self,
        st: &Statement,
        index: u32,
        total: Instant,
        sliced: bool,
    ) -> Option<(Result<StatementResult, WriteError>, bool)> {
        let budget = &self.session.budget;
        budget.slice(sliced.then(|| Instant::now() + HERE_SLICE));
        // Its connection's close stops it (see `budget::Canceller`).
        budget.for_session(self.serving.as_ref().map_or(0, |s| s.link.id));
        // A statement that may fail after it changed rows (its expected
        // row count, or RETURNING rows past the result limit, are checked
        // once it ran) runs in a savepoint: it must undo only itself, as a
        // statement SQLite fails does.
        let undoable = st.expect_rows.is_some() || mentions_returning(&st.sql);
        let (r, cut) = budget.run_until(total, || {
            // A batch's text was checked when it was queued; a session's
            // statement is checked here.
            st.check_text(index)?;
            let s = &self.session;
            if undoable {
                s.own(&s.own.savepoint)
                    .map_err(crate::group::commit_error)?;
            }
            let before = s.conn.total_changes();
            let r = exec::run_one(&s.conn, &s.guard, index, st, None);
            // SQLite keeps what a statement failing under `FAIL` changed
            // (its own statement rollback is skipped): the caller is
            // told, rather than that it wrote nothing.
            // `changes()` is then the statement's own rows, and 0 after
            // SQLite's statement rollback; but only if it changed any
            // (else it is an earlier statement's). `total_changes` alone
            // counts a trigger's changes a rollback undid.
            let kept = if s.conn.total_changes() > before {
                s.conn.changes()
            } else {
                0
            };
            let r = match r {
                Err(e) if kept > 0 && !undoable && !s.conn.is_autocommit() => {
                    Err(e.with_rows_kept(kept))
                }
                r => r,
            };
            if undoable && !s.conn.is_autocommit() {
                let end = match r {
                    Ok(_) => s.own(&s.own.release),
                    Err(_) => s
                        .own(&s.own.rollback_to)
                        .and_then(|()| s.own(&s.own.release)),
                };
                end.map_err(crate::group::commit_error)?;
            }
            r
        });
        budget.for_session(0);
        let cut_here = sliced && budget.take_sliced();
        budget.slice(None);
        (!cut_here).then_some((r, cut))
    }

    /// Whether the slice cut `st` short leaving the session's transaction
    /// as it was: it only reads (so SQLite rolled nothing back, and there
    /// is no change of its own to apply twice), runs in no savepoint of
    /// ours, and the transaction is still open.
    pub(super) fn left_whole(&self, st: &Statement) -> bool {
        let conn = &self.session.conn;
        let undoable = st.expect_rows.is_some() || mentions_returning(&st.sql);
        if undoable || conn.is_autocommit() {
            return false;
        }
        // Not the statement cache: the guard lets a session's savepoints
        // through only uncached (see `exec`), and says so on its flag.
        let readonly = conn.prepare(&st.sql).is_ok_and(|stmt| stmt.readonly());
        self.session.guard.take_session_only();
        readonly
    }

    /// Begins the served session's transaction again and runs its
    /// statements so far, after SQLite rolled it back under a slice.
    ///
    /// # Errors
    ///
    /// Why the session cannot go on (it is then to end).
    pub(super) fn rebuild(&mut self) -> Result<(), String> {
        let Some(s) = self.serving.as_mut() else {
            return Ok(());
        };
        s.rebuild = false;
        let total = s.total;
        let history = s.history.take().unwrap_or_default();
        let foreign_keys = s.link.request.foreign_keys;
        self.session
            .begin_session(foreign_keys)
            .map_err(|e| format!("it could not begin again: {e}"))?;
        let lapsed = || "its total lease lapsed while its statements ran again".to_owned();
        // Each under the index it ran with: an error names it, and must
        // tell what it told the first time.
        for (st, index, told) in &history.ran {
            let Some((r, cut)) = self.run_statement(st, *index, total, false) else {
                unreachable!("no slice off the adapters' thread");
            };
            // A statement too short to meet the progress handler is not
            // cut by the lease: look at the clock too.
            if cut || Instant::now() >= total {
                return Err(lapsed());
            }
            if self.session.conn.is_autocommit() {
                let why = r
                    .err()
                    .map_or_else(|| "SQLite ended it".into(), |e| e.to_string());
                return Err(format!(
                    "SQLite rolled it back while its statements ran again off the socket \
                     thread: {why}"
                ));
            }
            if fingerprint(&r) != *told {
                return Err(format!(
                    "a statement ran past {} ms on the socket thread and, run again off it \
                     with the session's earlier statements, one of them told otherwise \
                     than the first time (a result that changes from run to run: random(), \
                     the clock, changes(); or an error that did not come again)",
                    HERE_SLICE.as_millis()
                ));
            }
        }
        // Its later calls stay on the writer thread: no slice, nothing
        // more to keep.
        Ok(())
    }
}
