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
fn receipts_over_the_longest_value_are_recorded_and_read_back_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = crate::db::open_writer(&config(&dir)).unwrap();
    s.conn.execute_batch("CREATE TABLE t(k TEXT)").unwrap();
    // Sixteen receipts of 1,000 bytes, and one batch whose two results
    // make a receipt of 6,000: each value is under --max-value-bytes
    // (4,096), the row and the last receipt are not.
    let returning = |sql: &str, k: &str, bytes: usize| {
        Statement::new(format!("{sql} RETURNING hex(zeroblob({bytes}))")).params(vec![k.into()])
    };
    let keyed = |i: usize| {
        let k = format!("k{i}");
        Batch {
            key: Some(k.clone()),
            ..Batch::one(returning("INSERT INTO t(k) VALUES (?1)", &k, 500))
        }
    };
    let big = || Batch {
        key: Some("big".into()),
        ..Batch::new(vec![
            returning("INSERT INTO t(k) VALUES (?1)", "big", 1500),
            returning("UPDATE t SET k = ?1 WHERE k = 'big'", "big2", 1500),
        ])
    };
    let group = || (0..16).map(keyed).chain([big()]).collect::<Vec<_>>();
    let (s, out) = commit_as_one_group(s, group());
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    drop(s);
    // Opened again under the same limit, every key replays.
    let (s, _) = crate::db::open_writer(&config(&dir)).unwrap();
    assert_eq!(s.keys.len(), 17);
    let (_, out) = commit_as_one_group(s, group());
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
