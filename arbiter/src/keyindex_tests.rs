//! The in-memory key index on its own: changes seen in the transaction,
//! kept at commit, dropped at rollback; rows sharing a hash; rowid order.

use super::*;

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
