//! Keys' rows on a real database: a group's keys fit SQLite's longest
//! value however large their receipts, and a damaged row stops the open
//! with its rowid.

use std::time::Duration;

use scribe_protocol::{Batch, Paths, Statement};

use crate::config::Config;
use crate::writer::commit_as_one_group;

fn config(dir: &tempfile::TempDir) -> Config {
    let mut config = Config::new(Paths::for_db(&dir.path().join("r.db"), None).unwrap());
    config.max_value_bytes = 4096;
    config.batch_budget = Duration::from_secs(5);
    config
}

#[test]
fn a_group_of_large_receipts_is_recorded_in_rows_under_the_longest_value() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = crate::db::open_writer(&config(&dir)).unwrap();
    s.conn.execute_batch("CREATE TABLE t(k TEXT)").unwrap();
    // Each receipt holds a 1,000-byte value: sixteen are four times the
    // longest value, one is a quarter of it.
    let keyed = |i: usize| Batch {
        key: Some(format!("k{i}")),
        ..Batch::one(
            Statement::new("INSERT INTO t(k) VALUES (?1) RETURNING hex(zeroblob(500))")
                .params(vec![format!("k{i}").into()]),
        )
    };
    let (s, out) = commit_as_one_group(s, (0..16).map(keyed).collect());
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    let rows: i64 = s
        .conn
        .query_row("SELECT count(*) FROM _scribe_requests", [], |r| r.get(0))
        .unwrap();
    assert!(rows > 4, "{rows} rows for 16 receipts of 1,000 bytes");
    let (_, out) = commit_as_one_group(s, (0..16).map(keyed).collect());
    assert!(out.iter().all(|o| o.as_ref().unwrap().replayed), "{out:?}");
}

#[test]
fn a_row_that_cannot_be_read_stops_the_open_with_its_rowid_and_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = crate::db::open_writer(&config(&dir)).unwrap();
    s.conn.execute_batch("CREATE TABLE t(k TEXT)").unwrap();
    let (s, _) = commit_as_one_group(
        s,
        vec![Batch {
            key: Some("a".into()),
            ..Batch::one(Statement::new("INSERT INTO t(k) VALUES ('a')"))
        }],
    );
    drop(s);
    let db = dir.path().join("r.db");
    let raw = rusqlite::Connection::open(&db).unwrap();
    for damage in [
        "UPDATE _scribe_requests SET keys = 5",
        "UPDATE _scribe_requests SET keys = x'02ff'",
        "UPDATE _scribe_requests SET keys = (SELECT keys FROM _scribe_requests), n = 2",
    ] {
        let good: Vec<u8> = raw
            .query_row("SELECT keys FROM _scribe_requests", [], |r| r.get(0))
            .unwrap_or_default();
        raw.execute_batch(damage).unwrap();
        let e = crate::db::open_writer(&config(&dir))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("row 1 of _scribe_requests") && e.contains("deleting that row"),
            "{damage}: {e}"
        );
        if !good.is_empty() {
            raw.execute("UPDATE _scribe_requests SET keys = ?1, n = 1", [good])
                .unwrap();
        }
    }
}
