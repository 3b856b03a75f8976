//! Pruning by count takes exactly the oldest keys, part of a row
//! included, before and after a reopen; a commit's own keys are never
//! pruned by it.

use std::time::Duration;

use scribe_protocol::{Batch, Paths};

use crate::config::Config;
use crate::group::tests::{count, insert, open};
use crate::group::Session;
use crate::writer::commit_as_one_group;

fn keyed(k: usize) -> Batch {
    Batch {
        key: Some(format!("k{k}")),
        ..insert(k as i64)
    }
}

/// Which of keys `0..n` replay (the rest run again and fail on their
/// row, which is there).
fn replayed(s: Session, n: usize) -> (Session, Vec<bool>) {
    let (s, out) = commit_as_one_group(s, (0..n).map(keyed).collect());
    let seen = out
        .iter()
        .map(|o| o.as_ref().is_ok_and(|r| r.replayed))
        .collect();
    (s, seen)
}

fn prune(s: &Session, n: u64) -> u64 {
    s.guard
        .trusted(|| {
            crate::requests::in_transaction(&s.conn, &s.own, &s.keys, || {
                crate::requests::prune_oldest(&s.conn, &s.own, &s.keys, n)
            })
        })
        .unwrap()
}

#[test]
fn the_oldest_keys_go_exactly_even_from_the_middle_of_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, Duration::from_secs(5));
    // One commit, one row of ten keys.
    let (s, _) = commit_as_one_group(s, (0..10).map(keyed).collect());
    assert_eq!(count(&s, "SELECT count(*) FROM _scribe_requests"), 1);
    assert_eq!(prune(&s, 3), 3);
    assert_eq!(s.keys.len(), 7);
    assert_eq!(count(&s, "SELECT sum(n) FROM _scribe_requests"), 7);
    let (s, seen) = replayed(s, 10);
    let want: Vec<bool> = (0..10).map(|k| k >= 3).collect();
    assert_eq!(seen, want, "k0..k2 forgotten, k3..k9 kept");
    // After a reopen the row's keys keep their order: the next cut falls
    // after k4.
    drop(s);
    let paths = Paths::for_db(&dir.path().join("g.db"), None).unwrap();
    let (s, _) = crate::db::open_writer(&Config::new(paths)).unwrap();
    assert_eq!(prune(&s, 2), 2);
    let (_, seen) = replayed(s, 10);
    let want: Vec<bool> = (0..10).map(|k| k >= 5).collect();
    assert_eq!(seen, want);
}

#[test]
fn a_commit_over_the_count_prunes_every_older_key_and_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir, Duration::from_secs(5));
    s.max_keys = 2;
    let (s, _) = commit_as_one_group(s, vec![keyed(0)]);
    // 70 keys in one commit: a prune step (64) past the count of 2, with
    // one older key to prune.
    let (s, out) = commit_as_one_group(s, (1..71).map(keyed).collect());
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    assert_eq!(s.keys.len(), 70, "the commit's own keys all stay");
    let (_, seen) = replayed(s, 71);
    assert!(!seen[0] && seen[1..].iter().all(|r| *r), "{seen:?}");
}
