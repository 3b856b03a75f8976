//! The group commit, in process, on a real database file: one batch's
//! failure stays its own, an aborted transaction is run again without
//! its culprit, a deferred constraint is traced to its batch, keys replay
//! and refuse reuse.

use std::time::Duration;

use scribe_protocol::{Batch, Paths, Statement, WriteError};

use crate::config::Config;
use crate::group::Session;
use crate::writer::commit_as_one_group;

pub(crate) fn open(dir: &tempfile::TempDir, budget: Duration) -> Session {
    let paths = Paths::for_db(&dir.path().join("g.db"), None).unwrap();
    let mut config = Config::new(paths);
    config.batch_budget = budget;
    config.pragmas.push(("foreign_keys".into(), "on".into()));
    let (session, _) = crate::db::open_writer(&config).unwrap();
    session
        .conn
        .execute_batch(
            "CREATE TABLE t(v INTEGER PRIMARY KEY);
             CREATE TABLE p(id INTEGER PRIMARY KEY);
             CREATE TABLE c(pid INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .unwrap();
    session
}

pub(crate) fn insert(v: i64) -> Batch {
    Batch::one(Statement::new("INSERT INTO t(v) VALUES (?1)").params(vec![v.into()]))
}

pub(crate) fn count(s: &Session, sql: &str) -> i64 {
    s.conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

pub(crate) const SLOW_READ: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                         SELECT count(*) FROM c";
const SLOW_WRITE: &str = "INSERT INTO t(v) WITH RECURSIVE c(x) AS (SELECT 1000 UNION ALL \
                          SELECT x + 1 FROM c) SELECT x FROM c";

#[test]
fn a_failing_batch_rolls_back_alone_and_the_group_commits_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, Duration::from_secs(5));
    let (s, out) = commit_as_one_group(s, vec![insert(1), insert(1), insert(2)]);
    assert_only_the_middle_failed(&out, 0);
    assert_eq!(count(&s, "SELECT count(*) FROM t"), 2);
}

/// Of three batches committed as the group of seq 1, the middle one
/// failed at `statement` with a primary key's UNIQUE error.
pub(crate) fn assert_only_the_middle_failed(out: &[crate::group::Outcome], statement: u32) {
    assert!(out[0].is_ok() && out[2].is_ok(), "{out:?}");
    assert!(
        matches!(
            &out[1],
            Err(WriteError::Sql { statement: Some(s), code: 1555, .. }) if *s == statement
        ),
        "{:?}",
        out[1]
    );
    let seqs: Vec<u64> = out.iter().flatten().map(|r| r.seq).collect();
    assert_eq!(seqs, vec![1, 1], "one commit for the group");
}

#[test]
fn a_budget_cut_read_fails_alone_and_a_cut_write_is_run_again_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, Duration::from_millis(50));
    let slow = |sql: &str| Batch::one(Statement::new(sql));
    let (s, out) = commit_as_one_group(s, vec![insert(1), slow(SLOW_READ), insert(2)]);
    assert!(
        matches!(&out[1], Err(WriteError::Refused { .. })),
        "{out:?}"
    );
    assert!(out[0].is_ok() && out[2].is_ok());
    // An interrupted write makes SQLite roll back the whole transaction:
    // the others are committed in a second attempt.
    let (s, out) = commit_as_one_group(s, vec![insert(3), slow(SLOW_WRITE), insert(4)]);
    assert!(
        matches!(&out[1], Err(WriteError::Refused { .. })),
        "{out:?}"
    );
    assert!(out[0].is_ok() && out[2].is_ok(), "{out:?}");
    assert_eq!(count(&s, "SELECT count(*) FROM t"), 4);
    assert!(s.conn.is_autocommit(), "no transaction left open");
}

#[test]
fn a_deferred_constraint_at_commit_is_traced_to_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, Duration::from_secs(5));
    let orphan = Batch::one(Statement::new("INSERT INTO c(pid) VALUES (99)"));
    let parent = Batch::new(vec![
        Statement::new("INSERT INTO c(pid) VALUES (7)"),
        Statement::new("INSERT INTO p(id) VALUES (7)"),
    ]);
    let (s, out) = commit_as_one_group(s, vec![insert(1), orphan, parent]);
    assert!(out[0].is_ok() && out[2].is_ok(), "{out:?}");
    assert!(
        matches!(&out[1], Err(WriteError::Sql { code, .. }) if code & 0xff == 19),
        "{:?}",
        out[1]
    );
    assert_eq!(count(&s, "SELECT count(*) FROM c"), 1);
    assert_eq!(count(&s, "SELECT count(*) FROM t"), 1);
}

#[test]
fn a_key_replays_its_receipt_and_refuses_another_batch() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, Duration::from_secs(5));
    let keyed = |v: i64| Batch {
        key: Some("k".into()),
        ..insert(v)
    };
    let (s, first) = commit_as_one_group(s, vec![keyed(1)]);
    let first = first.into_iter().next().unwrap().unwrap();
    // The same key with the same batch, twice in one group and once more.
    let (s, again) = commit_as_one_group(s, vec![keyed(1), keyed(1)]);
    for r in again {
        let r = r.unwrap();
        assert!(r.replayed);
        assert_eq!((r.seq, &r.results), (first.seq, &first.results));
    }
    let (s, other) = commit_as_one_group(s, vec![keyed(2)]);
    assert!(
        matches!(&other[0], Err(WriteError::Conflict { .. })),
        "{other:?}"
    );
    assert_eq!(count(&s, "SELECT count(*) FROM t"), 1);
    assert_eq!(count(&s, "SELECT seq FROM _scribe_seq"), 1);
}

#[test]
fn the_visible_seq_comes_from_the_key_row_or_the_meta_row_and_survives_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, Duration::from_secs(5));
    let meta = |s: &Session| count(s, "SELECT value FROM _scribe_meta WHERE key = 'seq'");
    let seen = |s: &Session| count(s, "SELECT seq FROM _scribe_seq");
    let keyed = |k: &str, v: i64| Batch {
        key: Some(k.into()),
        ..insert(v)
    };
    // A keyed commit writes its seq in its row of keys only.
    let (s, out) = commit_as_one_group(s, vec![keyed("a", 1)]);
    assert_eq!(out[0].as_ref().unwrap().seq, 1);
    assert_eq!((meta(&s), seen(&s)), (0, 1));
    // One without a key writes it to _scribe_meta.
    let (s, out) = commit_as_one_group(s, vec![insert(2)]);
    assert_eq!(out[0].as_ref().unwrap().seq, 2);
    assert_eq!((meta(&s), seen(&s)), (2, 2));
    // The next seq is one past the greater of the two.
    let (s, out) = commit_as_one_group(s, vec![keyed("b", 3), insert(4)]);
    assert_eq!(out[1].as_ref().unwrap().seq, 3);
    assert_eq!((meta(&s), seen(&s)), (2, 3));
    // Deleting every key keeps the seq they carried.
    s.guard
        .trusted(|| {
            crate::requests::in_transaction(&s.conn, &s.own, &s.keys, || {
                crate::requests::prune_oldest(&s.conn, &s.own, &s.keys, 10)
            })
        })
        .unwrap();
    assert_eq!(count(&s, "SELECT count(*) FROM _scribe_requests"), 0);
    assert_eq!((meta(&s), seen(&s)), (3, 3));
    let (s, out) = commit_as_one_group(s, vec![keyed("c", 5)]);
    assert_eq!(out[0].as_ref().unwrap().seq, 4);
    assert_eq!(seen(&s), 4);
}

#[test]
fn keys_are_found_again_after_a_reopen_and_a_failed_batchs_key_is_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, Duration::from_secs(5));
    let keyed = |k: &str, v: i64| Batch {
        key: Some(k.into()),
        ..insert(v)
    };
    // "b" fails (duplicate value) inside a group that commits: its key
    // must not be remembered, so a corrected batch under it is new.
    let (s, out) = commit_as_one_group(s, vec![keyed("a", 1), keyed("b", 1), keyed("c", 2)]);
    assert!(
        out[0].is_ok() && out[1].is_err() && out[2].is_ok(),
        "{out:?}"
    );
    assert_eq!(s.keys.len(), 2);
    let (s, out) = commit_as_one_group(s, vec![keyed("b", 3)]);
    assert!(!out[0].as_ref().unwrap().replayed);
    drop(s);
    // The index is rebuilt from the table.
    let paths = Paths::for_db(&dir.path().join("g.db"), None).unwrap();
    let (s, _) = crate::db::open_writer(&Config::new(paths)).unwrap();
    assert_eq!(s.keys.len(), 3);
    let (s, out) = commit_as_one_group(s, vec![keyed("a", 1), keyed("b", 3), keyed("c", 9)]);
    assert!(out[0].as_ref().unwrap().replayed && out[1].as_ref().unwrap().replayed);
    assert!(
        matches!(&out[2], Err(WriteError::Conflict { .. })),
        "{out:?}"
    );
    assert_eq!(count(&s, "SELECT count(*) FROM t"), 3);
}

#[test]
fn keys_replay_and_prune_in_a_utf16_database() {
    let dir = tempfile::tempdir().unwrap();
    let paths = Paths::for_db(&dir.path().join("u.db"), None).unwrap();
    let mut config = Config::new(paths.clone());
    config.pragmas.push(("encoding".into(), "UTF16le".into()));
    let (s, _) = crate::db::open_writer(&config).unwrap();
    let enc: String = s
        .conn
        .query_row("PRAGMA encoding", [], |r| r.get(0))
        .unwrap();
    assert_eq!(enc, "UTF-16le");
    s.conn
        .execute_batch("CREATE TABLE t(v INTEGER PRIMARY KEY)")
        .unwrap();
    let keyed = |k: &str, v: i64| Batch {
        key: Some(k.into()),
        ..insert(v)
    };
    // Two commits, two rows: pruning one row below takes one key.
    let (s, _) = commit_as_one_group(s, vec![keyed("ключ-a", 1)]);
    let (s, _) = commit_as_one_group(s, vec![keyed("b", 2)]);
    let (s, out) = commit_as_one_group(s, vec![keyed("ключ-a", 1)]);
    assert!(out[0].as_ref().unwrap().replayed, "{out:?}");
    drop(s);
    let (s, _) = crate::db::open_writer(&Config::new(paths)).unwrap();
    assert_eq!(s.keys.len(), 2);
    let (s, out) = commit_as_one_group(s, vec![keyed("b", 2)]);
    assert!(out[0].as_ref().unwrap().replayed, "{out:?}");
    // Pruning takes the index down with the table.
    s.guard
        .trusted(|| {
            crate::requests::in_transaction(&s.conn, &s.own, &s.keys, || {
                crate::requests::prune_oldest(&s.conn, &s.own, &s.keys, 1)
            })
        })
        .unwrap();
    assert_eq!(s.keys.len(), 1);
    // The pruned key is gone from look-ups (its batch runs again, and
    // meets its own row); the other still replays.
    let (s, out) = commit_as_one_group(s, vec![keyed("ключ-a", 1), keyed("b", 2)]);
    assert!(
        matches!(&out[0], Err(WriteError::Sql { .. })),
        "{:?}",
        out[0]
    );
    assert!(out[1].as_ref().unwrap().replayed, "{out:?}");
    assert_eq!(count(&s, "SELECT count(*) FROM t"), 2);
}

#[test]
fn session_commits_with_keys_keep_the_key_count_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir, Duration::from_secs(5));
    s.max_keys = 10;
    let step = crate::group::prune_step(s.max_keys);
    for n in 0..(s.max_keys + 2 * step) {
        s.begin_session(None).unwrap();
        s.commit_session(Some(&format!("session-{n}"))).unwrap();
        assert!(s.keys.len() < s.max_keys + step, "{} keys", s.keys.len());
    }
    let held = count(&s, "SELECT sum(n) FROM _scribe_requests");
    assert_eq!(held as u64, s.keys.len());
}

#[test]
fn a_group_past_its_slice_is_undone_whole_keys_and_all() {
    use crate::group::{Attempt, Work};
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, Duration::from_secs(5));
    let keyed = |mut b: Batch, key: &str| {
        b.key = Some(key.into());
        let fingerprint = b.fingerprint();
        Work {
            batch: b,
            fingerprint,
            as_given: None,
        }
    };
    // A read cut short leaves SQLite's transaction open, a write rolls it
    // back: either way the group is undone and handed on whole.
    for slow in [SLOW_READ, SLOW_WRITE] {
        let group = [
            keyed(insert(1), "k1"),
            keyed(Batch::one(Statement::new(slow)), "k2"),
            keyed(insert(2), "k3"),
        ];
        s.budget
            .slice(Some(std::time::Instant::now() + Duration::from_millis(30)));
        let out = s.attempt(&group.iter().collect::<Vec<_>>());
        s.budget.slice(None);
        assert!(matches!(out, Ok(Attempt::Sliced)), "{out:?}");
        assert!(s.conn.is_autocommit());
        assert_eq!(count(&s, "SELECT count(*) FROM t"), 0);
        assert_eq!(count(&s, "SELECT count(*) FROM _scribe_requests"), 0);
        assert_eq!(s.keys.len(), 0, "the index kept a key of the undone group");
    }
    // Without a slice the same keys are new (not replays), and commit.
    let group = [keyed(insert(1), "k1"), keyed(insert(2), "k3")];
    match s.attempt(&group.iter().collect::<Vec<_>>()) {
        Ok(Attempt::Done {
            fresh: 2, outcomes, ..
        }) => {
            assert!(outcomes
                .iter()
                .all(|o| o.as_ref().is_ok_and(|r| !r.replayed)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&s, "SELECT count(*) FROM t"), 2);
    assert_eq!(s.keys.len(), 2);
}
