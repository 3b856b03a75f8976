//! The shell against the sqlite3 command line on the same scripts, where
//! a connection's habits matter: savepoints (one said outside a
//! transaction begins one, and releasing it commits; a failing statement
//! rolled back to it writes nothing: it wrote its statements one by one
//! before), `PRAGMA query_only` (it stopped nothing: every write went
//! through), and `last_insert_rowid()`, `changes()`, `total_changes()`
//! (0 after every write; inside a transaction, the arbiter's totals).

use crate::harness::Env;
use crate::shell::both_shells;

const SCRIPT: &str = "\
.mode csv
.headers on
CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL CHECK (bal >= 0));
INSERT INTO acct VALUES (1, 100), (2, 0);
SAVEPOINT transfer;
UPDATE acct SET bal = bal + 500 WHERE id = 2;
UPDATE acct SET bal = bal - 500 WHERE id = 1;
ROLLBACK TO transfer;
RELEASE transfer;
CREATE TABLE t(x);
SAVEPOINT a;
INSERT INTO t VALUES (1);
SAVEPOINT b;
INSERT INTO t VALUES (2);
ROLLBACK TO b;
SAVEPOINT A;
INSERT INTO t VALUES (3);
RELEASE a;
INSERT INTO t VALUES (4);
RELEASE a;
RELEASE nope;
SAVEPOINT undone;
INSERT INTO t VALUES (5);
ROLLBACK;
BEGIN;
SAVEPOINT inner;
INSERT INTO t VALUES (6);
RELEASE inner;
INSERT INTO t VALUES (7);
COMMIT;
SELECT * FROM acct;
SELECT x FROM t;
";

#[test]
fn savepoints_begin_release_and_roll_back_as_in_sqlite3() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    let Some((ours, theirs)) = both_shells(&env, &[], SCRIPT) else {
        return;
    };
    assert_eq!(
        ours.1, "id,bal\r\n1,100\r\n2,0\r\nx\r\n1\r\n3\r\n4\r\n6\r\n7\r\n",
        "{}",
        ours.2
    );
    assert_eq!(ours.1, theirs.1);
    assert!(ours.2.contains("CHECK constraint failed"), "{}", ours.2);
    assert!(ours.2.contains("no such savepoint: nope"), "{}", ours.2);
    assert_eq!(ours.2.lines().count(), 2, "{}", ours.2);
}

#[test]
fn query_only_refuses_this_shells_writes_as_in_sqlite3() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    let script = ".mode csv\n.headers on\nPRAGMA query_only;\nCREATE TABLE t(x);\n\
                  PRAGMA query_only = yes;\nPRAGMA query_only;\nINSERT INTO t VALUES (1);\n\
                  BEGIN;\nDELETE FROM t;\nCOMMIT;\nPRAGMA query_only = 0;\n\
                  INSERT INTO t VALUES (2);\nSELECT x FROM t;\n";
    let Some((ours, theirs)) = both_shells(&env, &[], script) else {
        return;
    };
    assert_eq!(
        ours.1, "query_only\r\n0\r\nquery_only\r\n1\r\nx\r\n2\r\n",
        "{}",
        ours.2
    );
    assert_eq!(ours.1, theirs.1);
    assert_eq!(
        ours.2
            .matches("attempt to write a readonly database")
            .count(),
        2,
        "{}",
        ours.2
    );
}

#[test]
fn last_insert_rowid_and_changes_count_this_shells_writes_as_in_sqlite3() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    let counts = "SELECT last_insert_rowid(), changes(), total_changes();\n";
    let script = [
        ".mode csv\nCREATE TABLE t(id INTEGER PRIMARY KEY, x);\n",
        counts,
        "INSERT INTO t(x) VALUES (1), (2);\n",
        counts,
        "UPDATE t SET x = x + 1;\nCREATE TABLE u(y);\n",
        counts,
        "BEGIN;\nINSERT INTO t(x) VALUES (9);\n",
        counts,
        "DELETE FROM t WHERE id = 1;\nCOMMIT;\n",
        counts,
        "INSERT INTO t(x) SELECT x FROM t WHERE 0;\n",
        counts,
    ]
    .concat();
    let Some((mut ours, theirs)) = both_shells(&env, &["--mode", "csv"], &script) else {
        return;
    };
    // The shell shows headers unless told; sqlite3 does not.
    ours.1 = ours
        .1
        .lines()
        .filter(|l| !l.starts_with("last_insert_rowid()"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        ours.1.replace('\r', ""),
        "0,0,0\n2,2,2\n2,2,4\n3,1,5\n3,1,6\n3,0,6\n",
        "{}",
        ours.2
    );
    assert_eq!(ours.1.replace('\r', ""), theirs.1.replace('\r', ""));
}

/// A shell that only reads a plain SQLite file, with no arbiter running
/// and no settings beside the file: a misspelt table or keyword, and a
/// look at `journal_mode` and `foreign_keys`, answer as sqlite3 does, and
/// nothing starts an arbiter (helper 94: each did, which put the file in
/// WAL and added scribe's tables to a file that was only read).
#[test]
fn reading_a_plain_file_starts_nothing_and_changes_nothing() {
    let env = Env::new();
    let theirs = env.dir.path().join("theirs.db");
    for db in [&env.db, &theirs] {
        let c = rusqlite::Connection::open(db).unwrap();
        c.execute_batch("CREATE TABLE t(a); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    let script =
        ".mode list\n.headers off\nSELECT * FROM nosuch;\nSELEC 1;\nPRAGMA journal_mode;\n\
                  PRAGMA foreign_keys;\nPRAGMA temp.journal_mode;\nPRAGMA wal_checkpoint;\n\
                  SELECT a FROM t;\n";
    let Some(((code, out, err), (their_code, their_out, their_err))) =
        both_shells(&env, &[], script)
    else {
        return;
    };
    assert_eq!(out, their_out, "{err}");
    assert_eq!(out, "delete\n0\ndelete\n0|-1|-1\n1\n");
    assert!(err.contains("no such table: nosuch"), "{err}");
    assert!(err.contains("syntax error"), "{err}");
    assert!(!err.contains("nothing was written"), "{err}");
    assert!(their_err.contains("no such table: nosuch"), "{their_err}");
    // sqlite3 exits 1 after an error; the shell, 15 (an SQL error).
    assert_eq!((code, their_code), (Some(15), Some(1)));
    assert!(env.arbiter_processes().is_empty(), "an arbiter was started");
    let journal: String = rusqlite::Connection::open(&env.db)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "delete");
    assert!(!env.paths().lock.exists(), "{:?}", env.paths().lock);
}

/// `EXPLAIN QUERY PLAN` after an index this shell made: the plan uses
/// it, as sqlite3's does (helper 94: the reader planned from the schema it
/// had loaded before, `SCAN t`, since an EXPLAIN reads no table and so
/// never checked the schema against the file).
#[test]
fn a_query_plan_sees_the_index_this_shell_made() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    let script = ".mode list\n.headers off\nCREATE TABLE t(a INTEGER PRIMARY KEY, b);\n\
                  SELECT count(*) FROM t;\nCREATE INDEX tb ON t(b);\n\
                  EXPLAIN QUERY PLAN SELECT * FROM t WHERE b = 1;\n";
    let (code, out) = crate::shell::shell(&env, script);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("SEARCH t USING COVERING INDEX tb (b=?)"),
        "{out}"
    );
}

/// A dot command's words as sqlite3 reads them: escapes resolved unquoted
/// and in `"`, taken as they are in `'` (helper 94: `.separator ' -- '
/// '\r\n'` printed a line break where sqlite3 prints `\r\n`).
#[test]
fn dot_command_quotes_and_escapes_read_as_in_sqlite3() {
    let env = Env::new();
    let script = ".mode list\n.headers off\n.separator ' -- ' '\\r\\n'\nSELECT 1, 2;\n\
                  .separator \"\\t\" \\n\nSELECT 3, 4;\n.separator \\101 \"|\\n\"\nSELECT 5, 6;\n";
    let Some(((code, out, err), (_, theirs, _))) = both_shells(&env, &[], script) else {
        return;
    };
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, theirs);
    assert!(out.starts_with("1 -- 2\\r\\n3\t4\n5A6|\n"), "{out:?}");
}
