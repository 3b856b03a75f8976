//! A migration's `-- scribe: foreign_keys=off` is read as its author meant
//! it, or refused: a table rebuild run with foreign keys on deletes every
//! row that points at the table (`ON DELETE CASCADE`), and commits.

use scribe_client::{Client, Error, Options};
use scribe_protocol::Migration;

use crate::harness::{stderr, Env};

const INIT: &str = "CREATE TABLE p(id INTEGER PRIMARY KEY);\n\
     CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id) ON DELETE CASCADE);\n\
     INSERT INTO p VALUES (1), (2);\n\
     INSERT INTO c VALUES (10, 1), (20, 2);";

/// SQLite's table rebuild of `p`, under a header of `head`.
fn rebuild(head: &str) -> String {
    format!(
        "{head}CREATE TABLE p_new(id INTEGER PRIMARY KEY, note TEXT);\n\
         INSERT INTO p_new(id) SELECT id FROM p;\n\
         DROP TABLE p;\n\
         ALTER TABLE p_new RENAME TO p;"
    )
}

#[test]
fn a_foreign_keys_directive_is_read_as_meant_or_refused_before_anything_runs() {
    let mut env = Env::new();
    env.start_arbiter(&["--pragma", "foreign_keys=on"]);
    let d = env.dir.path().join("m");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("0001_init.sql"), INIT).unwrap();
    // Saved with a byte-order mark, under a header comment, spaced.
    std::fs::write(
        d.join("0002_rebuild.sql"),
        rebuild("\u{feff}-- rebuild p\n-- scribe: foreign_keys = off\n"),
    )
    .unwrap();
    let out = env.scribe(&["migrate", d.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.count("SELECT count(*) FROM c"), 2, "children kept");

    // A directive scribe does not know: nothing runs.
    std::fs::write(
        d.join("0003_rebuild.sql"),
        rebuild("-- scribe: foreign_keys=no\n"),
    )
    .unwrap();
    let out = env.scribe(&["migrate", d.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("0003_rebuild.sql: line 1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.count("SELECT count(*) FROM c"), 2);

    // A program's own list: the text's directive counts though the field
    // was left out, and one the arbiter does not know is refused.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let options = Options {
        autostart: false,
        ..Options::default()
    };
    let client = rt
        .block_on(Client::connect(&env.paths(), &options))
        .unwrap();
    let list = |third: String| {
        vec![
            Migration::new(1, "init", INIT),
            Migration::new(
                2,
                "rebuild",
                rebuild("\u{feff}-- rebuild p\n-- scribe: foreign_keys = off\n"),
            ),
            Migration::new(3, "again", third),
        ]
    };
    let e = rt
        .block_on(client.migrate(list(rebuild("\n-- scribe: foreign_keys=0\n"))))
        .unwrap_err();
    assert!(matches!(e, Error::Refused { .. }), "{e:?}");
    assert!(e.to_string().contains("line 2"), "{e}");
    assert_eq!(env.count("SELECT count(*) FROM c"), 2);
    let report = rt
        .block_on(client.migrate(list(rebuild("-- scribe: foreign_keys=off\n"))))
        .unwrap();
    assert_eq!(report.after, 3);
    assert_eq!(env.count("SELECT count(*) FROM c"), 2, "children kept");
}
