//! `last_insert_rowid()`, `changes()` and `total_changes()` in the shell's
//! reads. The reader never writes, so SQLite's own functions would say 0
//! there after every write the shell made through the arbiter. These
//! stand in for them on the reader (a function an application defines
//! overrides a built-in one of the same name and arity), with what the
//! shell counted from the arbiter's answers. Inside a transaction, reads
//! run on the arbiter, with SQLite's own.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use rusqlite::functions::FunctionFlags;
use scribe_protocol::StatementResult;
use scribe_reader::Changes;

/// What the shell's own writes changed.
#[derive(Debug, Default)]
pub(super) struct Counts {
    last_rowid: AtomicI64,
    changes: AtomicI64,
    total: AtomicI64,
}

impl Counts {
    /// Counts for `conn`'s reads, the three functions registered on it.
    pub(super) fn install(conn: &rusqlite::Connection) -> rusqlite::Result<Arc<Counts>> {
        let counts = Arc::new(Counts::default());
        let flags = FunctionFlags::SQLITE_UTF8;
        for (name, pick) in [
            ("last_insert_rowid", 0usize),
            ("changes", 1),
            ("total_changes", 2),
        ] {
            let c = counts.clone();
            conn.create_scalar_function(name, 0, flags, move |_| Ok(c.get(pick)))?;
        }
        Ok(counts)
    }

    fn get(&self, pick: usize) -> i64 {
        [&self.last_rowid, &self.changes, &self.total][pick].load(Ordering::Relaxed)
    }

    /// A statement of this shell's ran on the arbiter: `changes` is what
    /// SQLite says it does (an INSERT moves the rowid; DDL moves nothing).
    pub(super) fn record(&self, changes: Changes, result: &StatementResult) {
        if !changes.dml {
            return;
        }
        let n = i64::try_from(result.rows_affected).unwrap_or(i64::MAX);
        self.changes.store(n, Ordering::Relaxed);
        self.total.fetch_add(n, Ordering::Relaxed);
        if changes.insert && n > 0 {
            self.last_rowid
                .store(result.last_insert_rowid, Ordering::Relaxed);
        }
    }
}
