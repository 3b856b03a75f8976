//! The in-memory key index on its own: changes seen in the transaction,
//! kept at commit, dropped at rollback; rows sharing a hash; rowid order.

use super::*;
use crate::keyrecord::Entry;

#[test]
fn changes_show_in_the_transaction_and_stay_only_when_it_commits() {
    let k = KeyIndex::new();
    let (a, b) = (k.hash(b"a"), k.hash(b"b"));
    k.added(a, 1);
    assert_eq!(k.candidates(a), vec![1]);
    assert_eq!(k.len(), 0);
    k.rollback();
    assert!(k.candidates(a).is_empty());
    k.added(a, 1);
    let m = k.mark();
    k.added(b, 2);
    k.undo_to(m);
    assert!(k.candidates(b).is_empty());
    k.added(b, 3);
    assert_eq!(k.candidates(b), vec![3], "an undone hash is seen again");
    k.undo_to(m);
    k.commit();
    assert_eq!((k.candidates(a), k.len()), (vec![1], 1));
    k.removed(a, 1);
    assert!(k.candidates(a).is_empty());
    k.rollback();
    assert_eq!(k.candidates(a), vec![1]);
    k.removed(a, 1);
    k.commit();
    assert!(k.candidates(a).is_empty() && k.is_empty());
}

#[test]
fn rows_sharing_a_hash_are_all_candidates_until_each_goes() {
    let k = KeyIndex::new();
    for id in [1, 2, 3] {
        k.added(7, id);
    }
    k.commit();
    assert_eq!((k.candidates(7), k.len()), (vec![1, 2, 3], 3));
    k.removed(7, 2);
    assert_eq!(k.candidates(7), vec![1, 3]);
    // A row deleted and its rowid used again in one transaction.
    k.removed(7, 3);
    k.added(7, 3);
    assert_eq!(k.candidates(7), vec![1, 3]);
    k.commit();
    assert_eq!((k.candidates(7), k.len()), (vec![1, 3], 2));
    k.removed(7, 1);
    k.removed(7, 9);
    k.commit();
    assert_eq!((k.candidates(7), k.len()), (vec![3], 1));
}

#[test]
fn the_oldest_rows_come_in_rowid_order_while_the_transaction_deletes_none() {
    let k = KeyIndex::new();
    for (h, id) in [(50, 5), (30, 3), (90, 9)] {
        k.added(h, id);
    }
    assert_eq!(k.oldest(1), None, "nothing committed yet");
    k.commit();
    assert_eq!(k.oldest(2), Some(vec![(3, 30), (5, 50)]));
    assert_eq!(k.oldest(3), Some(vec![(3, 30), (5, 50), (9, 90)]));
    assert_eq!(k.oldest(4), None, "fewer committed than asked");
    // Rows added in the transaction are not among the committed oldest.
    k.added(100, 10);
    assert_eq!(k.oldest(1), Some(vec![(3, 30)]));
    k.commit();
    // A transaction that deleted a row: the committed order may name it.
    k.removed(50, 5);
    assert_eq!(k.oldest(1), None);
    k.rollback();
    assert_eq!(k.oldest(1), Some(vec![(3, 30)]));
    k.removed(30, 3);
    k.removed(90, 9);
    k.commit();
    assert_eq!(k.oldest(2), Some(vec![(5, 50), (10, 100)]));
    // A rowid below the newest (SQLite never gives one, but the order
    // holds if it did).
    k.added(70, 7);
    k.commit();
    assert_eq!(k.oldest(3), Some(vec![(5, 50), (7, 70), (10, 100)]));
}

fn entry(key: &str) -> Entry {
    Entry {
        key: key.into(),
        fingerprint: 1,
        receipt: vec![1],
    }
}

/// The rows the open transaction would write: rowid and keys.
fn staged_rows(k: &KeyIndex) -> Vec<(i64, Vec<String>)> {
    k.with_staged(|rows| {
        rows.map(|(id, es)| (id, es.iter().map(|e| e.key.clone()).collect()))
            .collect()
    })
}

#[test]
fn staged_keys_share_a_row_and_follow_savepoints_and_the_transaction() {
    let k = KeyIndex::new();
    k.loaded(Some(41));
    let (a, b) = (k.hash(b"a"), k.hash(b"b"));
    k.stage(a, entry("a"));
    let m = k.mark();
    k.stage(b, entry("b"));
    assert_eq!(k.candidates(b), vec![42], "past the newest row at open");
    assert!(k.is_staged(42) && !k.is_staged(41));
    assert_eq!(k.staged("b").map(|e| e.key), Some("b".into()));
    k.undo_to(m);
    assert_eq!(k.staged("b"), None, "undone with its savepoint");
    assert!(k.candidates(b).is_empty());
    k.stage(b, entry("b"));
    assert_eq!(staged_rows(&k), vec![(42, vec!["a".into(), "b".into()])]);
    k.commit();
    assert_eq!((k.len(), k.staged("a")), (2, None));
    assert_eq!((k.candidates(a), k.candidates(b)), (vec![42], vec![42]));
    assert!(!k.is_staged(42) && k.is_staged(43));
    // A transaction that staged nothing takes no rowid; one rolled back
    // after staging takes its rowids all the same (its COMMIT may have
    // failed after writing them).
    k.commit();
    assert!(k.is_staged(43));
    k.stage(k.hash(b"c"), entry("c"));
    k.rollback();
    assert!(!k.is_staged(43) && k.is_staged(44));
}

#[test]
fn a_row_takes_at_most_row_keys_keys_and_about_row_bytes() {
    let k = KeyIndex::new();
    let names: Vec<String> = (0..ROW_KEYS + 2).map(|i| format!("k{i}")).collect();
    for name in &names[..ROW_KEYS + 1] {
        k.stage(k.hash(name.as_bytes()), entry(name));
    }
    let m = k.mark();
    k.stage(k.hash(b"last"), entry("last"));
    let rows = staged_rows(&k);
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].0, rows[0].1.len()), (1, ROW_KEYS));
    assert_eq!(rows[1], (2, vec![names[ROW_KEYS].clone(), "last".into()]));
    k.undo_to(m);
    assert_eq!(staged_rows(&k)[1], (2, vec![names[ROW_KEYS].clone()]));
    k.rollback();
    // A large receipt closes its row.
    let big = Entry {
        receipt: vec![0; ROW_BYTES],
        ..entry("big")
    };
    k.stage(k.hash(b"x"), entry("x"));
    k.stage(k.hash(b"big"), big);
    k.stage(k.hash(b"y"), entry("y"));
    let rows: Vec<(i64, Vec<String>)> = staged_rows(&k);
    assert_eq!(
        rows,
        vec![
            (3, vec!["x".into()]),
            (4, vec!["big".into()]),
            (5, vec!["y".into()])
        ]
    );
}

#[test]
fn the_oldest_keys_come_in_whole_rows() {
    let k = KeyIndex::new();
    for (h, id) in [(10, 1), (11, 1), (20, 2), (30, 3), (31, 3), (32, 3)] {
        k.added(h, id);
    }
    k.commit();
    assert_eq!(k.oldest(0), Some(vec![]));
    assert_eq!(k.oldest(1), Some(vec![(1, 10), (1, 11)]), "row 1 whole");
    assert_eq!(k.oldest(3), Some(vec![(1, 10), (1, 11), (2, 20)]));
    assert_eq!(k.oldest(4).map(|v| v.len()), Some(6), "row 3 whole");
    assert_eq!(k.oldest(7), None);
    assert_eq!(k.row(3), vec![30, 31, 32]);
    assert_eq!(k.row(2), vec![20]);
    assert!(k.row(9).is_empty());
    // Two keys of one row that share a hash go one at a time.
    k.added(50, 5);
    k.added(50, 5);
    k.commit();
    assert_eq!((k.candidates(50), k.len()), (vec![5, 5], 8));
    k.removed(50, 5);
    k.commit();
    assert_eq!((k.candidates(50), k.len()), (vec![5], 7));
}
