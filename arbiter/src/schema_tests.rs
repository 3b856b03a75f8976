//! Creating and upgrading scribe's tables, step by step.

use super::*;
use crate::keyrecord::{decode_keys, Entry};

/// Each row of the key table: rowid, seq, time, count, and its keys.
fn key_rows(c: &Connection) -> Vec<(i64, i64, i64, i64, Vec<Entry>)> {
    c.prepare("SELECT id, seq, created_at, n, keys FROM _scribe_requests ORDER BY id")
        .unwrap()
        .query_map([], |r| {
            let keys = decode_keys(&r.get::<_, Vec<u8>>(4)?)
                .unwrap()
                .into_iter()
                .map(|e| entry(e.key, e.fingerprint, e.receipt))
                .collect();
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, keys))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A database of version 3, with no keys yet.
fn version_3() -> Connection {
    let c = Connection::open_in_memory().unwrap();
    for sql in [CREATE_V1, V1_TO_V2, V2_TO_V3] {
        c.execute_batch(sql).unwrap();
    }
    c.execute_batch("INSERT INTO _scribe_meta VALUES ('schema', 3)")
        .unwrap();
    c
}

fn entry(key: &str, fingerprint: u64, receipt: &[u8]) -> Entry {
    Entry {
        key: key.into(),
        fingerprint,
        receipt: receipt.to_vec(),
    }
}

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
    // Oldest first, one key a row, each receipt with the format 0
    // marker before the old encoding.
    assert_eq!(
        key_rows(&c),
        vec![
            (1, 8, 100, 1, vec![entry("b", 1, &[0, 1])]),
            (2, 9, 200, 1, vec![entry("a", 2, &[0, 2])]),
        ]
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
    assert_eq!(
        key_rows(&c),
        vec![
            (1, 6, 100, 1, vec![entry("a", 1, &[1])]),
            (2, 7, 200, 1, vec![entry("b", 2, &[1])]),
        ]
    );
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
fn version_3_rows_become_rows_of_one_key_with_rowid_seq_and_receipt_kept() {
    let c = version_3();
    c.execute_batch(
        "UPDATE _scribe_meta SET value = 4 WHERE key = 'seq';
         INSERT INTO _scribe_requests(id, key, hash, seq, created_at, receipt)
             VALUES (5, 'ключ', -1, 6, 100, x'01aa'), (9, 'b', 2, 8, 200, x'0001');",
    )
    .unwrap();
    assert_eq!(ensure(&c, Path::new("m.db")).unwrap(), Some(3));
    assert_eq!(
        key_rows(&c),
        vec![
            (5, 6, 100, 1, vec![entry("ключ", u64::MAX, &[1, 0xaa])]),
            (9, 8, 200, 1, vec![entry("b", 2, &[0, 1])]),
        ]
    );
    let seq: i64 = c
        .query_row("SELECT seq FROM _scribe_seq", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seq, 8, "the view reads the newest row's seq");
    assert_eq!(version(&c).unwrap(), Some(VERSION));
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

#[test]
fn version_3_upgrades_under_a_longest_value_its_rows_are_close_to() {
    let c = version_3();
    c.execute_batch(
        "INSERT INTO _scribe_requests(key, hash, seq, created_at, receipt)
             VALUES ('a-key-of-some-length', 1, 1, 100, zeroblob(1020));",
    )
    .unwrap();
    // As `--max-value-bytes 1024` sets it: the receipt fits, the version 4
    // row (key, fingerprint and lengths beside it) does not.
    c.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, 1024)
        .unwrap();
    assert_eq!(ensure(&c, Path::new("m.db")).unwrap(), Some(3));
    let limit = c
        .limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH)
        .unwrap();
    assert_eq!(limit, 1024, "the limit is back");
    c.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, 1 << 20)
        .unwrap();
    assert_eq!(key_rows(&c)[0].4[0].receipt.len(), 1020);
}
