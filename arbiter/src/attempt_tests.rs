//! Optimistic groups, in process, on a real database file: a batch that
//! fails halfway through a group run with no savepoints leaves nothing
//! behind, the others commit once, keys stay in step, and the groups
//! after it run carefully.

use std::time::Duration;

use scribe_protocol::{Batch, Statement, WriteError};

use super::CAREFUL_GROUPS;
use crate::group::tests::{assert_only_the_middle_failed, count, insert, open, SLOW_READ};
use crate::writer::commit_as_one_group;

/// A batch whose first statement succeeds and whose second fails (a
/// duplicate of row `dup`): without a savepoint, its first row would stay.
fn halfway(first: i64, dup: i64) -> Batch {
    Batch::new(vec![
        Statement::new("INSERT INTO t(v) VALUES (?1)").params(vec![first.into()]),
        Statement::new("INSERT INTO t(v) VALUES (?1)").params(vec![dup.into()]),
    ])
}

#[test]
fn a_batch_failing_halfway_undoes_only_itself_and_the_next_groups_run_carefully() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, Duration::from_secs(5));
    assert_eq!(s.careful.get(), 0, "optimistic from the start");
    let (s, out) = commit_as_one_group(s, vec![insert(1), halfway(10, 1), insert(2)]);
    assert_only_the_middle_failed(&out, 1);
    let rows: Vec<i64> = {
        let mut stmt = s.conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    assert_eq!(rows, vec![1, 2], "the failed batch's first row is not kept");
    assert_eq!(s.careful.get(), CAREFUL_GROUPS);
    // The next group runs with savepoints from the start: its failure
    // does not start the count again, and is still its batch's alone.
    let (s, out) = commit_as_one_group(s, vec![halfway(20, 2), insert(3)]);
    assert!(out[0].is_err() && out[1].is_ok(), "{out:?}");
    assert_eq!(s.careful.get(), CAREFUL_GROUPS - 1);
    assert_eq!(count(&s, "SELECT count(*) FROM t WHERE v = 20"), 0);
    // A group of one is never counted: it needs no savepoint.
    let (s, _) = commit_as_one_group(s, vec![insert(4)]);
    assert_eq!(s.careful.get(), CAREFUL_GROUPS - 1);
    assert_eq!(count(&s, "SELECT count(*) FROM t"), 4);
    assert!(s.conn.is_autocommit(), "no transaction left open");
}

#[test]
fn keys_of_an_optimistic_group_that_ran_again_are_kept_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, Duration::from_secs(5));
    let keyed = |key: &str, b: Batch| Batch {
        key: Some(key.into()),
        ..b
    };
    let group = vec![
        keyed("a", insert(1)),
        keyed("b", halfway(10, 1)),
        keyed("c", insert(2)),
    ];
    let (s, out) = commit_as_one_group(s, group);
    assert!(
        out[0].is_ok() && out[1].is_err() && out[2].is_ok(),
        "{out:?}"
    );
    // (Debug builds also check the in-memory index against the table at
    // every commit and rollback.)
    // One row holds the group's two keys.
    assert_eq!(count(&s, "SELECT count(*) FROM _scribe_requests"), 1);
    assert_eq!(count(&s, "SELECT sum(n) FROM _scribe_requests"), 2);
    let again = vec![
        keyed("a", insert(1)),
        keyed("b", insert(10)),
        keyed("c", insert(2)),
    ];
    let (s, out) = commit_as_one_group(s, again);
    let replayed: Vec<bool> = out.iter().map(|o| o.as_ref().unwrap().replayed).collect();
    assert_eq!(replayed, vec![true, false, true], "{out:?}");
    assert_eq!(count(&s, "SELECT count(*) FROM t"), 3);
}

#[test]
fn a_batch_cut_by_its_budget_after_a_write_keeps_its_refusal_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, Duration::from_millis(50));
    let cut = Batch::new(vec![
        Statement::new("INSERT INTO t(v) VALUES (10)"),
        Statement::new(SLOW_READ),
    ]);
    let (s, out) = commit_as_one_group(s, vec![insert(1), cut, insert(2)]);
    assert!(out[0].is_ok() && out[2].is_ok(), "{out:?}");
    assert!(
        matches!(&out[1], Err(WriteError::Refused { reason, .. }) if reason.contains("time budget")),
        "{:?}",
        out[1]
    );
    assert_eq!(count(&s, "SELECT count(*) FROM t WHERE v = 10"), 0);
    assert_eq!(count(&s, "SELECT count(*) FROM t"), 2);
    assert_eq!(s.careful.get(), CAREFUL_GROUPS);
}
