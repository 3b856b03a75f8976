//! What the arbiter answers.

use serde::{Deserialize, Serialize};

use crate::value::Value;

/// The outcome of one statement of a committed batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatementResult {
    /// Rows inserted, updated or deleted by this statement (0 for DDL and
    /// queries).
    pub rows_affected: u64,
    /// `last_insert_rowid()` after this statement.
    pub last_insert_rowid: i64,
    /// Column names of a `RETURNING` clause (or of a query), else empty.
    pub columns: Vec<String>,
    /// Rows of a `RETURNING` clause (or of a query), else empty.
    pub rows: Vec<Vec<Value>>,
    /// Each column's declared type, where it comes straight from a table
    /// column (SQLite's `sqlite3_column_decltype`). Given to a JSON caller
    /// that asks for them in its hello (the Python drop-in, for
    /// `detect_types`); never in the bincode form nor in a stored
    /// receipt, whose layout stays as it was.
    #[serde(skip)]
    pub decltypes: Vec<Option<String>>,
}

impl StatementResult {
    /// A stable hash of everything the caller is told: a write session's
    /// statement run again must give the same (see the arbiter's session
    /// rebuild).
    pub fn fingerprint(&self) -> u64 {
        let mut h = crate::fingerprint::Fingerprint::default();
        h.word(self.rows_affected);
        h.word(self.last_insert_rowid as u64);
        h.word(self.columns.len() as u64);
        self.columns.iter().for_each(|c| h.bytes(c.as_bytes()));
        h.word(self.rows.len() as u64);
        for row in &self.rows {
            h.word(row.len() as u64);
            row.iter().for_each(|v| h.value(v));
        }
        h.0
    }
}

/// Proof that a batch is committed (and, with `synchronous=FULL`, on disk).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// The commit sequence number of the commit that holds this batch.
    /// It grows by one per commit and is written in the same transaction
    /// (readers see it as `SELECT seq FROM _scribe_seq`), so readers can
    /// wait until they see it.
    pub seq: u64,
    /// One result per statement, in order.
    pub results: Vec<StatementResult>,
    /// True when this receipt was stored earlier for the same idempotency
    /// key and nothing was written now.
    pub replayed: bool,
}

/// The answer to the handshake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The arbiter's protocol version (equal to the client's on success).
    pub protocol_version: u32,
    /// The arbiter's package version.
    pub server_version: String,
    /// The arbiter's process id.
    pub pid: u32,
    /// The request limits it enforces.
    pub limits: crate::limits::Limits,
    /// The database file it serves, for the caller to check that it is the
    /// one it named: a socket given by hand (or by an environment set for
    /// another program) may be another database's arbiter's.
    pub database: Served,
}

/// The database file an arbiter serves: its device and inode, as `stat`
/// gives them, and the path it opened it by (for messages).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// The path the arbiter opened it by.
    pub path: String,
}

impl Served {
    /// `Ok` when `db` names the file the arbiter serves; otherwise the
    /// error to give (`via` names the socket the answer came from).
    ///
    /// # Errors
    ///
    /// `Refused` when the arbiter serves another database (a socket given
    /// for another one: asking again cannot help); `Unavailable` when it
    /// serves the file that was at `db` before a move or a restore
    /// replaced it (it stops once it notices, and a new one serves the
    /// file there now).
    pub fn check(
        &self,
        db: &std::path::Path,
        via: &std::path::Path,
        pid: u32,
    ) -> Result<(), crate::WriteError> {
        use std::os::unix::fs::MetadataExt;
        let whose = format!(
            "the arbiter answering on {} (pid {pid}) serves {}",
            via.display(),
            self.path
        );
        let refused = |reason| crate::WriteError::Refused {
            statement: None,
            reason,
        };
        match std::fs::metadata(db) {
            Ok(m) if (m.dev(), m.ino()) == (self.dev, self.ino) => Ok(()),
            Ok(_) if self.path == db.display().to_string() => Err(crate::WriteError::Unavailable {
                reason: format!(
                    "{whose} as it was before the file there was moved or replaced; it stops \
                     once it notices, and the next call starts one on the file there now"
                ),
            }),
            Ok(_) => Err(refused(format!(
                "{whose}, not {}; check --socket (or SCRIBE_SOCKET), or name that database",
                db.display()
            ))),
            // A client that may not look into the database's directory
            // (one that only writes, through a socket given elsewhere)
            // cannot tell; it is served as before.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
            // Moved away or deleted this moment: its arbiter stops once it
            // notices, and a retry finds how things stand.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(crate::WriteError::Unavailable {
                    reason: format!("{whose}, and {} is not there now ({e})", db.display()),
                })
            }
            Err(e) => Err(refused(format!(
                "{whose}, and {} cannot be looked at ({e})",
                db.display()
            ))),
        }
    }
}

/// How to stop.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StopRequest {
    /// Keep auto-start off until the next `scribe start`.
    pub hold: bool,
    /// How long after the stop auto-start stays off (milliseconds);
    /// `None` for the arbiter's default.
    pub grace_ms: Option<u64>,
}

/// What a stop request did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StopReport {
    /// Writes that were queued when the stop began and were committed (or
    /// answered) before the arbiter exits.
    pub drained: u64,
    /// The arbiter's pid, so the caller can wait for it to be gone.
    pub pid: u32,
}
