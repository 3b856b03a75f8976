//! Where one statement of the shell runs: on the reader (a read outside a
//! transaction), as a one-statement batch (a write outside one), or in the
//! open write session (anything inside one, reads included, so that it
//! sees its own writes). `BEGIN`, `COMMIT` and `ROLLBACK` open and end the
//! session; SQLite's authorizer tells them apart, not the text.

use scribe_protocol::{Batch, Statement, Undone, Value, WriteError};
use scribe_reader::{Kind, SavepointOp};

use super::output;
use super::{Shell, Trouble};

impl Shell<'_> {
    /// Runs one statement and prints what it returns.
    pub(super) fn statement(&mut self, sql: &str) -> Result<(), Trouble> {
        // A statement the reader cannot prepare (a function only the
        // arbiter loads, say) goes to the arbiter, whose answer counts;
        // unless none runs and none would know more (see `no_arbiter_knows_more`).
        let classified = self.reader.classify(sql);
        let unprepared = classified.as_ref().err().map(ToString::to_string);
        let kind = classified.ok();
        self.effect = match &kind {
            Some(Kind::Write(changes)) => *changes,
            _ => scribe_reader::Changes::default(),
        };
        if self.ended.is_some() {
            return self.after_lapse(kind);
        }
        let open = self.tx.is_some();
        match (kind, open) {
            (Some(Kind::Begin), true) => Err(Trouble::sql(
                "cannot start a transaction within a transaction",
            )),
            (Some(Kind::Begin), false) => self.begin(),
            (Some(Kind::Commit), true) => self.commit(),
            (Some(Kind::Commit), false) => {
                Err(Trouble::sql("cannot commit - no transaction is active"))
            }
            (Some(Kind::Rollback), true) => self.rollback(),
            (Some(Kind::Rollback), false) => {
                Err(Trouble::sql("cannot rollback - no transaction is active"))
            }
            (Some(Kind::ForeignKeys { set: false }), _) => self.show_foreign_keys(sql),
            // A no-op inside a transaction, in SQLite.
            (Some(Kind::ForeignKeys { set: true }), true) => Ok(()),
            (Some(Kind::ForeignKeys { set: true }), false) => {
                // Run here, then read back: SQLite reads the value (a word
                // it does not know is off).
                self.local(sql)?;
                let read = self.local("PRAGMA foreign_keys")?;
                let on = read.rows.first().and_then(|r| r.first());
                self.foreign_keys = Some(matches!(on, Some(Value::Integer(n)) if *n != 0));
                Ok(())
            }
            (Some(Kind::QueryOnly { set: false }), _) => self.show(
                &["query_only".into()],
                &[vec![Value::Integer(i64::from(self.query_only))]],
            ),
            (Some(Kind::QueryOnly { set: true }), _) => {
                // SQLite reads the value on the reader (which stays
                // query-only for itself); it holds for this shell's writes.
                self.local(sql)?;
                let read = self.local("PRAGMA query_only");
                self.local("PRAGMA query_only = 1")?;
                let on = read?.rows.first().and_then(|r| r.first()).cloned();
                self.query_only = matches!(on, Some(Value::Integer(n)) if n != 0);
                Ok(())
            }
            (Some(Kind::Write(_)), _) if self.query_only => Err(Trouble::sql(
                "attempt to write a readonly database (PRAGMA query_only is on)",
            )),
            (Some(Kind::Savepoint(op, name)), open) => self.savepoint(sql, op, &name, open),
            // Reading no table, it needs no snapshot of the transaction:
            // here, `changes()` and the like are this shell's own.
            (Some(Kind::Read { tables: false }), true) => {
                let rows = self.local(sql)?;
                self.show(&rows.columns, &rows.rows)
            }
            (_, true) => self.in_session(sql),
            (Some(Kind::Read { .. }), false) => {
                let reading = self.interrupt.as_ref().map(|i| i.reading());
                let rows = self.local(sql)?;
                drop(reading);
                self.show(&rows.columns, &rows.rows)
            }
            (None, false) if self.no_arbiter_knows_more() => Err(Trouble::sql(
                unprepared.unwrap_or_else(|| "cannot prepare the statement".into()),
            )),
            (Some(Kind::Write(_)), false) if only_reads(sql) && self.no_arbiter_knows_more() => {
                let rows = self.local(sql)?;
                self.show(&rows.columns, &rows.rows)
            }
            (_, false) => self.write(sql),
        }
    }

    /// True when no arbiter runs and none started would know more than the
    /// reader: the file has no settings beside it (no extension it loads,
    /// no migrations at open). A read-only session (a misspelt table, a
    /// look at a pragma) then answers as sqlite3 would, and no arbiter is
    /// started for it, which would put the file in WAL and add scribe's
    /// tables: writes to a file that was only read.
    fn no_arbiter_knows_more(&self) -> bool {
        self.client.is_none()
            && !self.ctx.paths.config.exists()
            && matches!(
                scribe_protocol::lockfile::is_held(&self.ctx.paths),
                Ok(false)
            )
    }

    /// `sql` run on the local reader.
    fn local(&self, sql: &str) -> Result<scribe_reader::Rows, Trouble> {
        self.reader
            .query(sql, &scribe_protocol::Params::None)
            .map_err(|e| Trouble::sql(e.to_string()))
    }

    /// `PRAGMA foreign_keys`: whether this shell's writes are checked, as
    /// it set, or as the arbiter checks a write that does not say.
    fn show_foreign_keys(&mut self, sql: &str) -> Result<(), Trouble> {
        let on = match self.foreign_keys {
            Some(on) => on,
            // An arbiter with no settings checks as SQLite does by default,
            // as the reader does.
            None if self.no_arbiter_knows_more() => {
                let rows = self.local(sql)?;
                return self.show(&rows.columns, &rows.rows);
            }
            None => {
                let client = self.client()?.clone();
                self.ctx.runtime.block_on(client.status())?.foreign_keys
            }
        };
        self.show(
            &["foreign_keys".into()],
            &[vec![Value::Integer(i64::from(on))]],
        )
    }

    fn show(&self, columns: &[String], rows: &[Vec<Value>]) -> Result<(), Trouble> {
        output::print(self.mode, self.headers, &self.separators, columns, rows).map_err(|f| match f
        {
            crate::Failure::Local(m) => Trouble::local(m),
            crate::Failure::Usage(m) => Trouble::usage(m),
            crate::Failure::Category(e) | crate::Failure::Read(e) => e.into(),
            crate::Failure::Reported(code) => Trouble {
                category: "usage",
                message: String::new(),
                exit: code,
            },
        })
    }

    pub(super) fn write(&mut self, sql: &str) -> Result<(), Trouble> {
        // Made here, as `scribe exec` makes it, so that a timeout can name
        // it: the outcome is then unknown, and only the same key asks.
        let key = scribe_client::retry::new_key();
        let batch = Batch {
            statements: vec![Statement::new(sql)],
            key: Some(key.clone()),
            wait_ms: self.wait_ms,
            foreign_keys: self.foreign_keys,
        };
        let client = self.client()?.clone();
        let receipt = self
            .ctx
            .runtime
            .block_on(client.write(batch))
            .map_err(|e| match e {
                // With this shell's PRAGMA foreign_keys the batch is not the
                // one `scribe exec` would send (it has no such flag).
                WriteError::Timeout { message } if self.foreign_keys.is_some() => {
                    WriteError::Timeout {
                        message: format!(
                            "{message}; this statement's key was {key} (it was written at \
                             most once; look for its rows to learn whether it was)"
                        ),
                    }
                }
                WriteError::Timeout { message } => WriteError::Timeout {
                    message: format!(
                        "{message}; this statement's key was {key}: `scribe exec --key {key} \
                         '{}'` learns its outcome (it is written at most once)",
                        sql.replace('\'', "'\\''")
                    ),
                },
                other => other,
            })?;
        match receipt.results.first() {
            Some(r) => {
                self.counts.record(self.effect, r);
                self.show(&r.columns, &r.rows)
            }
            None => Ok(()),
        }
    }

    fn begin(&mut self) -> Result<(), Trouble> {
        let client = self.client()?.clone();
        let request = scribe_protocol::BeginRequest {
            wait_ms: self.wait_ms,
            foreign_keys: self.foreign_keys,
            ..scribe_protocol::BeginRequest::default()
        };
        let tx = self.ctx.runtime.block_on(client.begin_with(request))?;
        // Begun by `Client::begin`, it has its lease already.
        if let (true, Some(lease)) = (self.interactive, tx.lease()) {
            errln!(
                "write session open: every other writer waits until COMMIT or ROLLBACK; \
                 it lapses after {} ms idle or {} ms in all",
                lease.idle_ms,
                lease.total_ms
            );
        }
        self.tx = Some(tx);
        self.savepoints.clear();
        self.begun_by_savepoint = false;
        Ok(())
    }

    fn in_session(&mut self, sql: &str) -> Result<(), Trouble> {
        let tx = self.tx.clone().expect("a session is open");
        match self.ctx.runtime.block_on(tx.exec(Statement::new(sql))) {
            Ok(r) => {
                self.counts.record(self.effect, &r);
                self.show(&r.columns, &r.rows)
            }
            Err(e) => {
                match &e {
                    // Rolled back by SQLite (`OR ROLLBACK`, a full disk):
                    // back to autocommit, as sqlite3's shell is.
                    WriteError::RolledBack { .. } => self.tx = None,
                    // Ended by the arbiter, which sqlite3 never does: the
                    // rest of the transaction must not run on its own.
                    WriteError::Expired { reason } => {
                        self.tx = None;
                        self.ended = Some(reason.clone());
                    }
                    _ => {}
                }
                // A statement's error leaves the transaction open, and what
                // it did before stands: "nothing was written" would say
                // otherwise.
                let undone = if self.tx.is_some() {
                    Undone::Statement
                } else {
                    Undone::Call
                };
                let mut trouble = Trouble::from(e.clone());
                trouble.message = e.message(undone);
                Err(trouble)
            }
        }
    }

    /// `SAVEPOINT`, `RELEASE` or `ROLLBACK TO`, as SQLite runs them: a
    /// savepoint outside a transaction begins one (on the arbiter), and
    /// releasing that first savepoint commits it.
    fn savepoint(
        &mut self,
        sql: &str,
        op: SavepointOp,
        name: &str,
        open: bool,
    ) -> Result<(), Trouble> {
        // SQLite compares savepoint names without case.
        let at = self
            .savepoints
            .iter()
            .rposition(|s| s.eq_ignore_ascii_case(name));
        match (op, open) {
            (SavepointOp::Begin, false) => {
                self.begin()?;
                if let Err(e) = self.in_session(sql) {
                    // Nothing began, as SQLite leaves it after a failed
                    // SAVEPOINT.
                    let _ = self.rollback();
                    return Err(e);
                }
                self.savepoints = vec![name.to_owned()];
                self.begun_by_savepoint = true;
                Ok(())
            }
            (_, false) => Err(Trouble::sql(format!("no such savepoint: {name}"))),
            (SavepointOp::Release, true) if at == Some(0) && self.begun_by_savepoint => {
                self.commit()
            }
            (op, true) => {
                self.in_session(sql)?;
                match (op, at) {
                    (SavepointOp::Begin, _) => self.savepoints.push(name.to_owned()),
                    (SavepointOp::Release, Some(i)) => self.savepoints.truncate(i),
                    (SavepointOp::RollbackTo, Some(i)) => self.savepoints.truncate(i + 1),
                    _ => {}
                }
                Ok(())
            }
        }
    }

    /// A statement after the arbiter ended the open transaction: only
    /// COMMIT (which fails, saying so) and ROLLBACK end that state.
    fn after_lapse(&mut self, kind: Option<Kind>) -> Result<(), Trouble> {
        let reason = self.ended.take().unwrap_or_default();
        let expired = |reason: String| Trouble::from(WriteError::Expired { reason });
        match kind {
            Some(Kind::Rollback) => Ok(()),
            Some(Kind::Commit) => Err(expired(format!("{reason}, before this COMMIT"))),
            _ => {
                let said = format!(
                    "{reason}; this statement did not run, nor will any until ROLLBACK (or \
                     COMMIT) ends the transaction"
                );
                self.ended = Some(reason);
                Err(expired(said))
            }
        }
    }

    fn commit(&mut self) -> Result<(), Trouble> {
        let tx = self.tx.take().expect("a session is open");
        let receipt = self.ctx.runtime.block_on(tx.commit())?;
        if self.interactive {
            errln!("committed (seq {})", receipt.seq);
        }
        Ok(())
    }

    fn rollback(&mut self) -> Result<(), Trouble> {
        let tx = self.tx.take().expect("a session is open");
        match self.ctx.runtime.block_on(tx.rollback()) {
            // Ended already: rolled back either way, as asked.
            Ok(()) | Err(WriteError::Expired { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// `PRAGMA [schema.]journal_mode` asked, not set, or `PRAGMA
/// [schema.]wal_checkpoint` of a file no arbiter serves: SQLite prepares
/// them as writes, though on a file left alone they only read (a
/// checkpoint of a file not in WAL answers `0|-1|-1`).
fn only_reads(sql: &str) -> bool {
    let words = sql
        .trim()
        .trim_end_matches(';')
        .to_ascii_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let Some(name) = words.strip_prefix("pragma ") else {
        return false;
    };
    let name = name.rsplit_once('.').map_or(name, |(_, n)| n);
    matches!(name, "journal_mode" | "wal_checkpoint")
}
