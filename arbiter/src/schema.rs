//! scribe's own schema, in one place: its tables, its version, the steps
//! that bring an older database up to date, and the texts of the
//! arbiter's own statements.
//!
//! The version lives in `_scribe_meta` (key `schema`), never in `PRAGMA
//! user_version`, which belongs to the programs that use the database.
//! A database made by scribe 0.1.0 has no `schema` row: it is version 0.
//! Upgrades run at open, in one IMMEDIATE transaction, before the socket
//! appears; a database from a newer scribe is refused by name.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::error::Error;
use crate::guard::RESERVED_PREFIX;

/// The schema this release writes.
pub const VERSION: i64 = 4;

/// The idempotency keys' table as version 1 made it (one text for the
/// new database and for the upgrade from version 0).
macro_rules! requests_table_v1 {
    () => {
        "CREATE TABLE IF NOT EXISTS main._scribe_requests(
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    hash INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    receipt BLOB NOT NULL);"
    };
}

/// Version 1: the counters, and the idempotency keys in insertion order
/// (the rowid), so pruning deletes from the front of one b-tree.
const CREATE_V1: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS main._scribe_meta(
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL);
INSERT OR IGNORE INTO main._scribe_meta(key, value) VALUES ('seq', 0);
",
    requests_table_v1!()
);

/// Version 1 to 2: the record of the program's schema migrations.
const V1_TO_V2: &str = "
CREATE TABLE IF NOT EXISTS main._scribe_migrations(
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at INTEGER NOT NULL);
";

/// Version 2 to 3, two pages fewer for every keyed commit to write and
/// sync:
/// - the key table loses its index on the key (a second b-tree): the
///   arbiter, its only writer, keeps that index in memory (see
///   `keyindex`);
/// - the commit sequence as readers see it, the `_scribe_seq` view: a
///   commit that records an idempotency key carries its seq in that key's
///   row and leaves `_scribe_meta` alone; a commit without a key, and any
///   transaction that deletes keys, writes it to `_scribe_meta`. The
///   newest key row is the last by `id`, so the view costs two lookups.
///
/// The rename is the legacy one: the current one checks every view and
/// trigger of the schema and fails on any that names a missing table,
/// and a program's own schema may hold such a view (SQLite lets one
/// outlive its table).
const V2_TO_V3: &str = "
CREATE TABLE main._scribe_requests_v3(
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    hash INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    receipt BLOB NOT NULL);
INSERT INTO main._scribe_requests_v3(id, key, hash, seq, created_at, receipt)
    SELECT id, key, hash, seq, created_at, receipt FROM main._scribe_requests ORDER BY id;
DROP TABLE main._scribe_requests;
PRAGMA legacy_alter_table = ON;
ALTER TABLE main._scribe_requests_v3 RENAME TO _scribe_requests;
PRAGMA legacy_alter_table = OFF;
CREATE VIEW IF NOT EXISTS main._scribe_seq(seq) AS SELECT max(
    coalesce((SELECT value FROM _scribe_meta WHERE key = 'seq'), 0),
    coalesce((SELECT seq FROM _scribe_requests ORDER BY id DESC LIMIT 1), 0));
";

/// Version 3 to 4: a commit's keys share rows, each row's keys in one
/// blob (see `keyrecord`), in place of one row per key. The view
/// `_scribe_seq` reads `id` and `seq`, which stay; the rows are copied
/// by [`v3_to_v4`] between the two halves.
const V3_TO_V4_CREATE: &str = "
CREATE TABLE main._scribe_requests_v4(
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    n INTEGER NOT NULL,
    keys BLOB NOT NULL);
";
const V3_TO_V4_SWAP: &str = "
DROP TABLE main._scribe_requests;
PRAGMA legacy_alter_table = ON;
ALTER TABLE main._scribe_requests_v4 RENAME TO _scribe_requests;
PRAGMA legacy_alter_table = OFF;
";

/// Copies each version-3 row (one key) to a version-4 row of one key,
/// rowid, seq and time kept; receipts are carried as stored.
fn v3_to_v4(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(V3_TO_V4_CREATE)?;
    {
        let mut read = conn.prepare(
            // Cast, so that a damaged value is carried as it is, for its
            // own look-up to report (as version 3 did), rather than
            // refusing the whole database here.
            "SELECT id, CAST(key AS TEXT), CAST(hash AS INTEGER), CAST(seq AS INTEGER), \
             CAST(created_at AS INTEGER), CAST(receipt AS BLOB) \
             FROM main._scribe_requests ORDER BY id",
        )?;
        let mut write = conn.prepare(
            "INSERT INTO main._scribe_requests_v4(id, seq, created_at, n, keys) \
             VALUES (?1, ?2, ?3, 1, ?4)",
        )?;
        let mut rows = read.query([])?;
        while let Some(r) = rows.next()? {
            let entry = crate::keyrecord::Entry {
                key: String::from_utf8_lossy(r.get_ref(1)?.as_bytes()?).into_owned(),
                fingerprint: r.get::<_, i64>(2)? as u64,
                receipt: r.get(5)?,
            };
            let blob = crate::keyrecord::encode_keys(&[entry])?;
            write.execute(rusqlite::params![
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                blob
            ])?;
        }
    }
    conn.execute_batch(V3_TO_V4_SWAP)
}

/// Version 0 (scribe 0.1.0) to 1: the key table gains a rowid in
/// insertion order; stored receipts keep their encoding, marked as
/// format 0 (see `keyrecord::decode_receipt`).
const V0_TO_V1: &str = concat!(
    "
ALTER TABLE main._scribe_requests RENAME TO _scribe_requests_v0;
",
    requests_table_v1!(),
    "
INSERT INTO main._scribe_requests(key, hash, seq, created_at, receipt)
    SELECT key, hash, seq, created_at, CAST(x'00' || receipt AS BLOB)
    FROM main._scribe_requests_v0 ORDER BY created_at, seq;
DROP TABLE main._scribe_requests_v0;
"
);

/// The version of scribe's tables in `conn`'s database: `None` when they
/// do not exist yet (a new database).
///
/// # Errors
///
/// SQLite's error.
pub fn version(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    let has_meta: bool = conn.query_row(
        "SELECT count(*) > 0 FROM main.sqlite_master WHERE type = 'table' AND name = ?1",
        [format!("{RESERVED_PREFIX}meta")],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(None);
    }
    let v: Option<i64> = conn
        .query_row(
            "SELECT value FROM main._scribe_meta WHERE key = 'schema'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(Some(v.unwrap_or(0)))
}

/// Creates or upgrades scribe's tables, in one IMMEDIATE transaction;
/// returns the version found (`None` for a new database).
///
/// # Errors
///
/// [`Error::NewerSchema`] for a database of a newer release;
/// [`Error::Schema`] naming the failing step otherwise (nothing is
/// changed then).
pub fn ensure(conn: &Connection, path: &Path) -> Result<Option<i64>, Error> {
    let step_err = |from, source| Error::Schema {
        path: path.to_path_buf(),
        from,
        source,
    };
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| step_err(-1, e))?;
    let out = upgrade(conn).map_err(|e| match e {
        Failed::Newer(found) => Error::NewerSchema {
            path: path.to_path_buf(),
            found,
            known: VERSION,
        },
        Failed::Step(from, source) => step_err(from, source),
    });
    match &out {
        Ok(_) => conn.execute_batch("COMMIT").map_err(|e| step_err(-1, e))?,
        Err(_) => {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    out
}

enum Failed {
    Newer(i64),
    /// The version a step started from (-1: reading or recording the
    /// version), and SQLite's error.
    Step(i64, rusqlite::Error),
}

fn upgrade(conn: &Connection) -> Result<Option<i64>, Failed> {
    let found = version(conn).map_err(|e| Failed::Step(-1, e))?;
    let mut at = match found {
        None => {
            step(conn, 0, CREATE_V1)?;
            1
        }
        Some(v) if v > VERSION => return Err(Failed::Newer(v)),
        Some(v) => v,
    };
    while at < VERSION {
        match at {
            0 => step(conn, at, V0_TO_V1)?,
            1 => step(conn, at, V1_TO_V2)?,
            2 => step(conn, at, V2_TO_V3)?,
            3 => crate::keyrecord::unlimited(conn, || v3_to_v4(conn))
                .map_err(|e| Failed::Step(at, e))?,
            _ => unreachable!("every version below VERSION has a step"),
        }
        at += 1;
    }
    conn.execute(
        "INSERT INTO main._scribe_meta(key, value) VALUES ('schema', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [VERSION],
    )
    .map_err(|e| Failed::Step(-1, e))?;
    Ok(found)
}

fn step(conn: &Connection, from: i64, sql: &str) -> Result<(), Failed> {
    conn.execute_batch(sql).map_err(|e| Failed::Step(from, e))
}

/// The texts of the arbiter's own statements.
///
/// They run with the guard lowered and are cached by their text, so a
/// caller's statement with the very same text would reuse the trusted
/// preparation. Each text therefore starts with a comment carrying a
/// random nonce chosen at open: no caller can send it. Every table is
/// named with `main.`, so nothing in another schema can stand in for it.
#[derive(Clone, Debug)]
pub struct Own {
    /// Opens a group's transaction.
    pub begin: String,
    /// Opens one batch's savepoint.
    pub savepoint: String,
    /// Keeps one batch's work.
    pub release: String,
    /// Undoes one batch's work.
    pub rollback_to: String,
    /// Commits a group.
    pub commit: String,
    /// Abandons a group.
    pub rollback: String,
    /// The seq in `_scribe_meta` and in the newest key row (see
    /// `V2_TO_V3`), inside the open transaction.
    pub read_seq: String,
    /// Writes a commit's seq to `_scribe_meta`.
    pub write_seq: String,
    /// Takes the next seq and writes it to `_scribe_meta`, in one
    /// statement (a commit that records no key).
    pub bump_seq: String,
    /// Folds the newest key row's seq into `_scribe_meta`, before keys
    /// are deleted.
    pub keep_seq: String,
    /// One row's keys, by rowid.
    pub request_by_id: String,
    /// Every row's rowid, count of keys and keys (to build the in-memory
    /// index, and for its check in debug builds).
    pub all_requests: String,
    /// Records one row of a commit's keys.
    pub record_request: String,
    /// The newest key row's rowid and keys (to tell whether the table
    /// changed outside the arbiter).
    pub newest_request: String,
    /// `PRAGMA data_version`: changes when another connection commits.
    pub data_version: String,
    /// The oldest recorded key's age (unix seconds).
    pub oldest_request: String,
    /// Deletes the oldest rows that hold `?1` keys or more, naming each
    /// (when the in-memory order cannot be used).
    pub prune_oldest: String,
    /// How many keys the rows up to rowid `?1` hold.
    pub count_through: String,
    /// Writes row `?1` again with `?2` keys, `?3` (its oldest pruned).
    pub trim_request: String,
    /// Deletes the rows up to rowid `?1`.
    pub prune_through: String,
    /// Deletes up to `?2` of the oldest rows created before `?1`, naming
    /// each.
    pub prune_before: String,
    /// The applied migrations, in version order.
    pub migrations: String,
    /// Records one applied migration.
    pub record_migration: String,
}

impl Own {
    /// The texts, marked with `nonce`.
    pub fn new(nonce: u64) -> Own {
        let m = |sql: &str| format!("/* scribe {nonce:016x} */ {sql}");
        Own {
            begin: m("BEGIN IMMEDIATE"),
            savepoint: m("SAVEPOINT scribe_batch"),
            release: m("RELEASE scribe_batch"),
            rollback_to: m("ROLLBACK TO scribe_batch"),
            commit: m("COMMIT"),
            rollback: m("ROLLBACK"),
            read_seq: m(
                "SELECT (SELECT value FROM main._scribe_meta WHERE key = 'seq'), \
                 (SELECT seq FROM main._scribe_requests ORDER BY id DESC LIMIT 1)",
            ),
            write_seq: m("UPDATE main._scribe_meta SET value = ?1 WHERE key = 'seq'"),
            bump_seq: m("UPDATE main._scribe_meta SET value = max(value, coalesce(\
                 (SELECT seq FROM main._scribe_requests ORDER BY id DESC LIMIT 1), value), 0) + 1 \
                 WHERE key = 'seq' RETURNING value"),
            keep_seq: m("UPDATE main._scribe_meta SET value = max(value, coalesce(\
                 (SELECT seq FROM main._scribe_requests ORDER BY id DESC LIMIT 1), value)) \
                 WHERE key = 'seq'"),
            request_by_id: m("SELECT keys FROM main._scribe_requests WHERE id = ?1"),
            all_requests: m("SELECT id, n, keys FROM main._scribe_requests"),
            newest_request: m(
                "SELECT id, keys FROM main._scribe_requests ORDER BY id DESC LIMIT 1",
            ),
            data_version: m("PRAGMA main.data_version"),
            record_request: m(
                "INSERT INTO main._scribe_requests(id, seq, created_at, n, keys) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            ),
            oldest_request: m("SELECT created_at FROM main._scribe_requests ORDER BY id LIMIT 1"),
            // Through the first row at which the running count reaches
            // ?1, or every row when they hold fewer.
            prune_oldest: m("DELETE FROM main._scribe_requests WHERE id <= coalesce(\
                 (SELECT id FROM (SELECT id, sum(n) OVER (ORDER BY id) AS upto \
                 FROM main._scribe_requests) WHERE upto >= ?1 ORDER BY id LIMIT 1), \
                 (SELECT max(id) FROM main._scribe_requests)) RETURNING id"),
            count_through: m(
                "SELECT coalesce(sum(n), 0) FROM main._scribe_requests WHERE id <= ?1",
            ),
            trim_request: m("UPDATE main._scribe_requests SET n = ?2, keys = ?3 WHERE id = ?1"),
            prune_through: m("DELETE FROM main._scribe_requests WHERE id <= ?1"),
            prune_before: m("DELETE FROM main._scribe_requests WHERE id IN \
                 (SELECT id FROM main._scribe_requests ORDER BY id LIMIT ?2) AND created_at < ?1 \
                 RETURNING id"),
            migrations: m("SELECT version, name, checksum, applied_at \
                 FROM main._scribe_migrations ORDER BY version"),
            record_migration: m(
                "INSERT INTO main._scribe_migrations(version, name, checksum, \
                 applied_at) VALUES (?1, ?2, ?3, ?4)",
            ),
        }
    }

    /// A nonce that differs between runs and processes.
    pub fn random() -> Own {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        Own::new(h.finish())
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
