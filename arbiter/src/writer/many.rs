//! A write session's statements, one call at a time or several in one
//! (`exec_many`, a DB-API `executemany`): each runs as an `exec` would,
//! kept for a rebuild and under the slice on the adapters' thread; the
//! first that fails ends the call, and those before it stay done, as in
//! SQLite's own `executemany` loop.

use std::collections::VecDeque;
use std::time::Instant;

use scribe_protocol::{Answer, Statement, StatementResult, WriteError};
use tracing::info;

use super::commit::HERE_SLICE;
use super::run::Writer;
use super::session::{expired, expired_error};
use super::ReplyTo;

/// The statements of an `exec_many` still to run, and what those run so
/// far changed.
#[derive(Debug)]
pub struct Many {
    left: VecDeque<Statement>,
    /// Statements of the call run so far: the next one's index in it.
    done: u32,
    affected: u64,
    last_rowid: i64,
}

impl Many {
    /// All of `statements` still to run.
    pub fn new(statements: Vec<Statement>) -> Many {
        Many {
            left: statements.into(),
            done: 0,
            affected: 0,
            last_rowid: 0,
        }
    }
}

/// How a statement of the served session went.
pub(super) enum Step {
    /// It ran (its outcome is the caller's answer).
    Ran(Result<StatementResult, WriteError>),
    /// No session is served any more.
    Gone,
    /// The session cannot go on: the caller is told `told`; it ends
    /// saying `why`.
    Over { told: WriteError, why: String },
}

impl Writer {
    /// Runs `st`, statement `index` of its call, in the served session;
    /// gives it back when the slice cut it short here (the session is
    /// then pinned to the writer thread, its transaction to be put back
    /// first unless the statement only read).
    pub(super) fn step(
        &mut self,
        st: Statement,
        index: u32,
        sliced: bool,
    ) -> Result<Step, Statement> {
        let Some(s) = &self.serving else {
            return Ok(Step::Gone);
        };
        let (total, total_ms) = (s.total, s.lease.total_ms);
        // Only a session whose statements are all kept may be cut short.
        debug_assert!(
            !sliced || s.history.is_some(),
            "a sliced run with nothing to rebuild"
        );
        let Some((r, cut)) = self.run_statement(&st, index, total, sliced) else {
            let whole = self.left_whole(&st);
            let Some(s) = self.serving.as_mut() else {
                return Ok(Step::Gone);
            };
            s.pinned = true;
            // It came in time: its idle lease starts again while the
            // writer thread takes it.
            s.last = Instant::now();
            // Put the transaction back, unless the statement only read:
            // an interrupted write made SQLite roll it back, and SQLite
            // also reports an interrupt when the deadline passes on its
            // way out of a statement that had finished (its changes
            // kept), so an open transaction may hold the statement
            // already; run again on top, it would apply twice. A read
            // cut short leaves the transaction as it was, and running the
            // session's statements again could only end it where one of
            // them tells otherwise (random(), the clock).
            s.rebuild = !whole;
            if whole {
                // Pinned without a rebuild: nothing will take what is kept.
                s.history = None;
            }
            info!(
                session = s.link.id,
                "a session's statement outlasted the socket thread's slice; the writer \
                 thread runs it and the session's later calls"
            );
            return Err(st);
        };
        if let Some(s) = &mut self.serving {
            s.statements += 1;
            s.last = Instant::now();
            s.keep(st, index, &r);
        }
        self.stats.session_statement();
        Ok(if cut && self.session.budget.take_cancelled() {
            let why = "its connection closed while a statement ran";
            Step::Over {
                told: expired_error(why),
                why: why.to_owned(),
            }
        } else if cut {
            Step::Over {
                told: expired_error("its total lease lapsed while a statement ran"),
                why: format!("its total lease of {total_ms} ms lapsed while a statement ran"),
            }
        } else if self.session.conn.is_autocommit() {
            // SQLite undid the transaction itself (`OR ROLLBACK`,
            // `RAISE(ROLLBACK)`, a full disk, an interrupt): the session
            // cannot go on. The caller is told the statement's own error.
            match r {
                Err(WriteError::Sql {
                    statement,
                    code,
                    message,
                }) => Step::Over {
                    why: format!("SQLite rolled it back: {message} (SQLite code {code})"),
                    told: WriteError::RolledBack {
                        statement,
                        code,
                        message,
                    },
                },
                r => {
                    let e = r
                        .err()
                        .map_or_else(|| "SQLite ended it".into(), |e| e.to_string());
                    Step::Over {
                        why: format!("SQLite rolled it back: {e}"),
                        told: expired_error(&e),
                    }
                }
            }
        } else {
            Step::Ran(r)
        })
    }

    /// Runs an `exec_many`'s statements in order until one fails; gives
    /// the rest back when they are to go on on the writer thread (the
    /// slice cut one short; or the call has held this thread for a slice
    /// already, or a statement took the session past what is kept: the
    /// writer thread takes the rest, the transaction as it is).
    pub(super) fn exec_many(&mut self, many: Many, sliced: bool) -> Result<Step, Many> {
        self.exec_many_until(many, sliced, Instant::now() + HERE_SLICE)
    }

    /// [`Writer::exec_many`], holding this thread until `until` at most
    /// when `sliced`.
    pub(super) fn exec_many_until(
        &mut self,
        mut many: Many,
        sliced: bool,
        until: Instant,
    ) -> Result<Step, Many> {
        // The call came in time, whatever it holds (each statement it
        // runs restarts the idle lease again).
        if let Some(s) = self.serving.as_mut() {
            s.last = Instant::now();
        }
        while let Some(st) = many.left.pop_front() {
            match self.step(st, many.done, sliced) {
                Err(st) => {
                    many.left.push_front(st);
                    return Err(many);
                }
                Ok(Step::Ran(Ok(r))) => {
                    many.done += 1;
                    many.affected += r.rows_affected;
                    many.last_rowid = r.last_insert_rowid;
                }
                Ok(other) => return Ok(other),
            }
            if sliced && !many.left.is_empty() {
                // Pinned by the statement just kept (past what is kept to
                // run again): the rest must not be cut short here, as
                // there would be nothing to put the transaction back
                // with. Past the slice: this thread has others to serve.
                let pinned = self.pinned();
                if pinned || Instant::now() >= until {
                    if let Some(s) = self.serving.as_mut() {
                        s.pinned = true;
                        s.last = Instant::now();
                        return Err(many);
                    }
                }
            }
        }
        Ok(Step::Ran(Ok(StatementResult {
            rows_affected: many.affected,
            last_insert_rowid: many.last_rowid,
            ..StatementResult::default()
        })))
    }

    /// Answers a call that ran as `step` says; returns why the session
    /// ends, if it does.
    pub(super) fn tell(&self, step: Step, to: ReplyTo, here: bool) -> Option<String> {
        match step {
            Step::Ran(r) => {
                self.answer(to, r.map(Answer::Executed), here);
                None
            }
            Step::Gone => {
                self.answer(to, expired("the session is over"), here);
                None
            }
            Step::Over { told, why } => {
                self.answer(to, Err(told), here);
                Some(why)
            }
        }
    }
}

#[cfg(test)]
#[path = "many_tests.rs"]
mod tests;
