//! `PRAGMA foreign_keys` in `scribe shell`: set there, it checks the
//! shell's own writes as sqlite3's would; unset, the arbiter's setting
//! holds.

use crate::harness::Env;
use crate::shell::{both_shells, shell};

/// `PRAGMA foreign_keys` is the shell's own, as it is a sqlite3
/// connection's: set outside a transaction, the arbiter checks the
/// shell's writes by it, in a transaction as outside; inside one it
/// changes nothing.
#[test]
fn foreign_keys_set_in_the_shell_check_its_writes_as_in_sqlite3() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    let script = ".mode csv\n.headers on\nPRAGMA foreign_keys;\n\
                  CREATE TABLE p(id INTEGER PRIMARY KEY);\n\
                  CREATE TABLE ch(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id));\n\
                  INSERT INTO ch VALUES (1, 99);\n\
                  PRAGMA foreign_keys = on;\nPRAGMA foreign_keys;\n\
                  INSERT INTO ch VALUES (2, 98);\n\
                  BEGIN;\nPRAGMA foreign_keys=OFF;\nINSERT INTO ch VALUES (3, 97);\nCOMMIT;\n\
                  PRAGMA foreign_keys=0;\nINSERT INTO ch VALUES (4, 96);\n\
                  SELECT id FROM ch ORDER BY id;\n";
    let Some((ours, theirs)) = both_shells(&env, &[], script) else {
        return;
    };
    assert_eq!(
        ours.1, "foreign_keys\r\n0\r\nforeign_keys\r\n1\r\nid\r\n1\r\n4\r\n",
        "{}",
        ours.2
    );
    assert_eq!(ours.1, theirs.1);
    assert_eq!(
        ours.2.matches("FOREIGN KEY constraint failed").count(),
        2,
        "{}",
        ours.2
    );
}

/// Until the shell sets it, `PRAGMA foreign_keys` reads what the arbiter
/// does with a write that does not say.
#[test]
fn foreign_keys_read_the_arbiters_setting_until_the_shell_sets_one() {
    let mut env = Env::new();
    env.start_arbiter(&["--pragma", "foreign_keys=on"]);
    let mut script = ".mode csv\n.headers off\nPRAGMA foreign_keys;\n\
                      PRAGMA foreign_keys=off;\nPRAGMA foreign_keys;\n"
        .to_owned();
    let mut expected = "1\r\n0\r\n".to_owned();
    // Each value as SQLite reads a boolean pragma's (a word it does not
    // know, full, extra and a negative number are off).
    for (value, on) in [
        ("ON", 1),
        ("main.FOREIGN_KEYS=0", 0),
        ("'yes'", 1),
        ("maybe", 0),
        ("full", 0),
        ("-1", 0),
        ("1.0", 1),
        ("0x100", 1),
        ("99999999999", 0),
    ] {
        let set = match value.split_once('=') {
            Some((name, v)) => format!("PRAGMA {name}={v};"),
            None => format!("PRAGMA foreign_keys={value};"),
        };
        script.push_str(&format!("{set}\nPRAGMA foreign_keys;\n"));
        expected.push_str(&format!("{on}\r\n"));
    }
    let (code, out) = shell(&env, &script);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out, expected);
}
