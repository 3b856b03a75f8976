//! Foreign-key checks per request, in process, on a real database file
//! whose arbiter checks them by default (`--pragma foreign_keys=on`).

use std::time::Duration;

use scribe_protocol::{Batch, Statement, WriteError};

use crate::group::tests::{count, open};
use crate::writer::commit_as_one_group;

/// A row pointing at a parent that does not exist, checked as `fk` says.
fn orphan(fk: Option<bool>) -> Batch {
    Batch {
        foreign_keys: fk,
        ..Batch::one(Statement::new("INSERT INTO ci(pid) VALUES (99)"))
    }
}

fn refused_by_a_foreign_key(out: &crate::group::Outcome) -> bool {
    matches!(out, Err(WriteError::Sql { code, .. }) if code & 0xff == 19)
}

fn with_immediate_child(dir: &tempfile::TempDir) -> crate::group::Session {
    let s = open(dir, Duration::from_secs(5));
    s.conn
        .execute_batch("CREATE TABLE ci(pid INTEGER REFERENCES p(id) ON DELETE CASCADE);")
        .unwrap();
    s
}

#[test]
fn each_write_of_a_group_is_checked_as_it_asks_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = with_immediate_child(&dir);
    let group = vec![
        orphan(Some(false)),
        orphan(None),
        orphan(Some(false)),
        crate::group::tests::insert(1),
        orphan(Some(true)),
        orphan(Some(false)),
    ];
    let (s, out) = commit_as_one_group(s, group);
    assert!(
        out[0].is_ok() && out[2].is_ok() && out[5].is_ok(),
        "{out:?}"
    );
    assert!(refused_by_a_foreign_key(&out[1]), "{:?}", out[1]);
    assert!(refused_by_a_foreign_key(&out[4]), "{:?}", out[4]);
    assert!(out[3].is_ok(), "{:?}", out[3]);
    // Split into transactions that each want one setting, in the order
    // the writes came.
    let seqs: Vec<u64> = out.iter().flatten().map(|r| r.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(count(&s, "SELECT count(*) FROM ci"), 3);
    assert_eq!(count(&s, "SELECT count(*) FROM t"), 1);
    // Back to the arbiter's own setting for the next transaction.
    let (s, out) = commit_as_one_group(s, vec![orphan(None)]);
    assert!(refused_by_a_foreign_key(&out[0]), "{:?}", out[0]);
    assert!(s.conn.is_autocommit(), "no transaction left open");
}

#[test]
fn a_table_rebuilt_with_foreign_keys_off_keeps_the_rows_pointing_at_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = with_immediate_child(&dir);
    s.conn
        .execute_batch("INSERT INTO p(id) VALUES (1); INSERT INTO ci(pid) VALUES (1);")
        .unwrap();
    let rebuild = |fk: Option<bool>| Batch {
        foreign_keys: fk,
        ..Batch::new(vec![
            Statement::new("CREATE TABLE p_new(id INTEGER PRIMARY KEY, note TEXT)"),
            Statement::new("INSERT INTO p_new(id) SELECT id FROM p"),
            Statement::new("DROP TABLE p"),
            Statement::new("ALTER TABLE p_new RENAME TO p"),
        ])
    };
    let (s, out) = commit_as_one_group(s, vec![rebuild(Some(false))]);
    assert!(out[0].is_ok(), "{:?}", out[0]);
    assert_eq!(count(&s, "SELECT count(*) FROM ci"), 1, "nothing cascaded");
    // The same rebuild with the arbiter's setting (on) cascades: what the
    // setting is for.
    let (s, out) = commit_as_one_group(s, vec![rebuild(None)]);
    assert!(out[0].is_ok(), "{:?}", out[0]);
    assert_eq!(count(&s, "SELECT count(*) FROM ci"), 0);
}
