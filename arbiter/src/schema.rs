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
pub const VERSION: i64 = 3;

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

/// Version 0 (scribe 0.1.0) to 1: the key table gains a rowid in
/// insertion order; stored receipts keep their encoding, marked as
/// format 0 (see `requests::decode`).
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
        let sql = match at {
            0 => V0_TO_V1,
            1 => V1_TO_V2,
            2 => V2_TO_V3,
            _ => unreachable!("every version below VERSION has a step"),
        };
        step(conn, at, sql)?;
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
    /// One key's row, by rowid. Keys are read as text, which SQLite hands
    /// over as UTF-8 whatever the database's encoding (a blob cast to text
    /// would keep a UTF-16 file's bytes), and are compared and hashed as
    /// those bytes, so a damaged row that is not valid text is a miss, not
    /// an error.
    pub request_by_id: String,
    /// Every key with its rowid (to build the in-memory index).
    pub all_requests: String,
    /// How many keys the table holds, and how many different ones (the
    /// index's check in debug builds).
    pub count_requests: String,
    /// Records an idempotency key with its receipt.
    pub record_request: String,
    /// The oldest recorded key's age (unix seconds).
    pub oldest_request: String,
    /// Deletes the oldest `?1` keys, naming each (when the in-memory
    /// order cannot be used).
    pub prune_oldest: String,
    /// How many keys have a rowid up to `?1`.
    pub count_through: String,
    /// Deletes the keys with a rowid up to `?1`.
    pub prune_through: String,
    /// Deletes up to `?2` of the oldest keys created before `?1`.
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
            request_by_id: m(
                "SELECT CAST(key AS TEXT), hash, receipt FROM main._scribe_requests WHERE id = ?1",
            ),
            all_requests: m("SELECT id, CAST(key AS TEXT) FROM main._scribe_requests"),
            count_requests: m("SELECT count(*), count(DISTINCT key) FROM main._scribe_requests"),
            record_request: m(
                "INSERT INTO main._scribe_requests(key, hash, seq, created_at, receipt) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            ),
            oldest_request: m("SELECT created_at FROM main._scribe_requests ORDER BY id LIMIT 1"),
            prune_oldest: m("DELETE FROM main._scribe_requests WHERE id IN \
                 (SELECT id FROM main._scribe_requests ORDER BY id LIMIT ?1) RETURNING id, CAST(key AS TEXT)"),
            count_through: m("SELECT count(*) FROM main._scribe_requests WHERE id <= ?1"),
            prune_through: m("DELETE FROM main._scribe_requests WHERE id <= ?1"),
            prune_before: m("DELETE FROM main._scribe_requests WHERE id IN \
                 (SELECT id FROM main._scribe_requests ORDER BY id LIMIT ?2) AND created_at < ?1 \
                 RETURNING id, CAST(key AS TEXT)"),
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
mod tests {
    use super::*;

    #[test]
    fn a_new_database_gets_the_current_version_and_a_second_open_changes_nothing() {
        let c = Connection::open_in_memory().unwrap();
        assert_eq!(ensure(&c, Path::new("m.db")).unwrap(), None);
        assert_eq!(version(&c).unwrap(), Some(VERSION));
        assert_eq!(ensure(&c, Path::new("m.db")).unwrap(), Some(VERSION));
    }

    #[test]
    fn a_newer_database_is_refused_and_left_alone() {
        let c = Connection::open_in_memory().unwrap();
        ensure(&c, Path::new("m.db")).unwrap();
        c.execute(
            "UPDATE _scribe_meta SET value = ?1 WHERE key = 'schema'",
            [VERSION + 1],
        )
        .unwrap();
        let e = ensure(&c, Path::new("m.db")).unwrap_err();
        assert!(e.to_string().contains("newer scribe"), "{e}");
        assert_eq!(version(&c).unwrap(), Some(VERSION + 1));
    }

    #[test]
    fn version_0_keeps_its_keys_in_order() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE _scribe_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT INTO _scribe_meta VALUES ('seq', 9);
             CREATE TABLE _scribe_requests(key TEXT PRIMARY KEY, hash INTEGER NOT NULL,
                 seq INTEGER NOT NULL, created_at INTEGER NOT NULL, receipt BLOB NOT NULL)
                 WITHOUT ROWID;
             INSERT INTO _scribe_requests VALUES ('b', 1, 8, 100, x'01'), ('a', 2, 9, 200, x'02');",
        )
        .unwrap();
        assert_eq!(ensure(&c, Path::new("m.db")).unwrap(), Some(0));
        let rows: Vec<(i64, String, Vec<u8>)> = c
            .prepare("SELECT id, key, receipt FROM _scribe_requests ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows[0].1, "b", "oldest first");
        assert_eq!(
            rows[1].2,
            vec![0, 2],
            "format 0 marker before the old encoding"
        );
        let seq: i64 = c
            .query_row("SELECT value FROM _scribe_meta WHERE key='seq'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(seq, 9);
    }

    #[test]
    fn version_2_upgrades_beside_a_view_that_outlived_its_table_and_keeps_keys_and_seq() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(CREATE_V1).unwrap();
        c.execute_batch(V1_TO_V2).unwrap();
        c.execute_batch(
            "INSERT INTO _scribe_meta VALUES ('schema', 2);
             UPDATE _scribe_meta SET value = 7 WHERE key = 'seq';
             INSERT INTO _scribe_requests(key, hash, seq, created_at, receipt)
                 VALUES ('a', 1, 6, 100, x'01'), ('b', 2, 7, 200, x'01');
             CREATE TABLE gone(x);
             CREATE VIEW orphan AS SELECT x FROM gone;
             DROP TABLE gone;",
        )
        .unwrap();
        assert_eq!(ensure(&c, Path::new("m.db")).unwrap(), Some(2));
        let keys: Vec<(i64, String)> = c
            .prepare("SELECT id, key FROM _scribe_requests ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys, vec![(1, "a".into()), (2, "b".into())]);
        let seq: i64 = c
            .query_row("SELECT seq FROM _scribe_seq", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seq, 7);
        let indexes: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' \
                 AND tbl_name = '_scribe_requests'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 0, "no index on the key any more");
    }

    #[test]
    fn own_texts_carry_their_nonce_and_name_main() {
        let own = Own::new(7);
        assert!(own.commit.starts_with("/* scribe 0000000000000007 */"));
        for sql in [
            &own.read_seq,
            &own.write_seq,
            &own.bump_seq,
            &own.keep_seq,
            &own.request_by_id,
            &own.all_requests,
            &own.record_request,
        ] {
            assert!(sql.contains("main._scribe_"), "{sql}");
        }
    }
}
