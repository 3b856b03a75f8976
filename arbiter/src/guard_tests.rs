//! The guard's rules, table-driven: every spelling of every form that
//! could reach scribe's objects or the temp schema is refused.

use super::*;

fn guarded() -> (Connection, Guard) {
    let mut c = Connection::open_in_memory().unwrap();
    c.execute_batch(
        "CREATE TABLE _scribe_meta(key TEXT PRIMARY KEY, value);
         CREATE TABLE _scribe_requests(key PRIMARY KEY, receipt);
         CREATE TABLE t(x)",
    )
    .unwrap();
    let g = Guard::install(&mut c).unwrap();
    (c, g)
}

/// Prepares `sql` (each statement of it, `;;`-separated, in order,
/// running all but the last) and returns the rule that refused it, or
/// SQLite's own refusal (`sqlite: ...`) where SQLite stops it first.
fn refused(c: &Connection, g: &Guard, sql: &str) -> String {
    let mut rest = sql;
    loop {
        let (head, tail) = match rest.find(";;") {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None => (rest, ""),
        };
        match c.prepare(head) {
            Ok(mut st) if !tail.is_empty() => {
                st.raw_execute()
                    .unwrap_or_else(|e| panic!("{head}: {e} {:?}", g.take_denial()));
            }
            Ok(_) => panic!("{sql}: was allowed"),
            Err(e) => return g.take_denial().unwrap_or_else(|| format!("sqlite: {e}")),
        }
        rest = tail;
    }
}

/// Every way of naming one of scribe's tables.
fn spellings(table: &str) -> Vec<String> {
    let upper = table.to_ascii_uppercase();
    let mixed: String = table
        .chars()
        .enumerate()
        .map(|(i, ch)| {
            if i % 2 == 0 {
                ch.to_ascii_uppercase()
            } else {
                ch
            }
        })
        .collect();
    let mut out = Vec::new();
    for name in [table.to_owned(), upper, mixed] {
        out.push(name.clone());
        out.push(format!("\"{name}\""));
        out.push(format!("main.{name}"));
        out.push(format!("MAIN.\"{name}\""));
    }
    out
}

#[test]
fn nothing_in_temp_can_touch_scribe_or_outlive_a_batch() {
    let (c, g) = guarded();
    let templates = [
        "CREATE TEMP TRIGGER tr AFTER UPDATE ON {} BEGIN DELETE FROM main.t; END",
        "CREATE TEMPORARY TRIGGER tr AFTER INSERT ON {} BEGIN DELETE FROM {}; END",
        "CREATE TRIGGER temp.tr BEFORE DELETE ON {} BEGIN SELECT RAISE(ABORT, 'x'); END",
        "CREATE TEMP TABLE {} AS SELECT 'seq' AS key, 0 AS value",
        "CREATE TEMP TABLE {}(key, value)",
        "CREATE TEMP VIEW {} AS SELECT 'seq' AS key, 0 AS value",
        "CREATE TEMP VIEW v AS SELECT * FROM {}",
        "CREATE INDEX temp.i ON {}(key)",
    ];
    let mut tried = 0;
    for table in ["_scribe_meta", "_scribe_requests", "t"] {
        for name in spellings(table) {
            for t in templates {
                let sql = t.replace("{}", &name);
                let rule = refused(&c, &g, &sql);
                assert!(
                    rule.contains("temp schema is closed")
                        || rule.contains("belongs to scribe")
                        || rule.starts_with("sqlite: "),
                    "{sql}: {rule}"
                );
                tried += 1;
            }
        }
        // A bare name in temp, schema-qualified.
        for name in [
            format!("temp.{table}"),
            format!("TEMP.\"{table}\""),
            format!("Temp.{}", table.to_ascii_uppercase()),
        ] {
            for sql in [
                format!("CREATE TABLE {name}(a)"),
                format!("CREATE VIEW {name} AS SELECT 1"),
                format!("CREATE TRIGGER {name} AFTER INSERT ON t BEGIN SELECT 1; END"),
            ] {
                let rule = refused(&c, &g, &sql);
                assert!(
                    rule.contains("temp schema is closed") || rule.contains("belongs to scribe"),
                    "{sql}: {rule}"
                );
                tried += 1;
            }
        }
    }
    // An INSTEAD OF trigger needs a view: in temp the view is refused; in
    // main the trigger may exist, but what it would write is refused when
    // a statement that fires it is prepared.
    let rule = refused(
        &c,
        &g,
        "CREATE VIEW v AS SELECT 1 AS a;;\
         CREATE TRIGGER tv INSTEAD OF INSERT ON v BEGIN \
         UPDATE _scribe_meta SET value = 0; END;;\
         INSERT INTO v VALUES (1)",
    );
    assert!(rule.contains("belongs to scribe"), "{rule}");
    assert!(tried > 200, "{tried} variants");
    let temp: i64 = c
        .query_row("SELECT count(*) FROM temp.sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(temp, 0, "nothing was created in temp");
}

#[test]
fn scribe_objects_are_out_of_reach_in_main() {
    let (c, g) = guarded();
    for table in ["_scribe_meta", "_scribe_requests"] {
        for name in spellings(table) {
            for sql in [
                format!("INSERT INTO {name} VALUES (1, 2)"),
                format!("UPDATE {name} SET key = key"),
                format!("DELETE FROM {name}"),
                format!("DROP TABLE {name}"),
                format!("ALTER TABLE {name} ADD COLUMN z"),
                format!("CREATE TRIGGER tr AFTER INSERT ON {name} BEGIN SELECT 1; END"),
                format!("CREATE INDEX i ON {name}(key)"),
            ] {
                let rule = refused(&c, &g, &sql);
                assert!(
                    rule.contains("belongs to scribe") || rule.contains("syntax error"),
                    "{sql}: {rule}"
                );
            }
        }
    }
    let scribe_objects: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_scribe\\_%' ESCAPE '\\'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(scribe_objects, 2, "the two tables, nothing else");
    for sql in [
        "CREATE TABLE _scribe_x(a)",
        "CREATE VIEW _Scribe_v AS SELECT 1",
        "CREATE INDEX _SCRIBE_i ON t(x)",
        "CREATE TRIGGER _scribe_tr AFTER INSERT ON t BEGIN SELECT 1; END",
    ] {
        assert!(refused(&c, &g, sql).contains("belongs to scribe"), "{sql}");
    }
}

#[test]
fn refuses_what_breaks_the_arrangement() {
    let (c, g) = guarded();
    for sql in ["BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT a", "RELEASE a"] {
        assert!(
            refused(&c, &g, sql).contains("transaction control"),
            "{sql}"
        );
    }
    assert!(refused(&c, &g, "ATTACH 'x.db' AS x").contains("ATTACH"));
    assert!(refused(&c, &g, "DETACH x").contains("ATTACH"));
    for sql in [
        "PRAGMA journal_mode=DELETE",
        "PRAGMA locking_mode=EXCLUSIVE",
        "PRAGMA synchronous=OFF",
        "PRAGMA wal_checkpoint",
        "PRAGMA query_only=1",
        "PRAGMA foreign_keys=OFF",
    ] {
        let rule = refused(&c, &g, sql);
        assert!(
            rule.contains("scribed --pragma") || rule.contains("temp schema"),
            "{sql}: {rule}"
        );
    }
    assert!(refused(&c, &g, "SELECT load_extension('x')").contains("load_extension"));
}

#[test]
fn a_trigger_cannot_reach_the_reserved_tables() {
    let (c, g) = guarded();
    // SQLite checks a trigger's body when a statement that fires it is
    // prepared: the statement is refused.
    c.execute_batch(
        "CREATE TRIGGER sneaky AFTER INSERT ON t BEGIN UPDATE _scribe_meta SET value = 0; END",
    )
    .unwrap();
    assert!(c.prepare("INSERT INTO t VALUES (1)").is_err());
    assert!(g.take_denial().unwrap().contains("belongs to scribe"));
}

#[test]
fn allows_ordinary_work() {
    let (c, g) = guarded();
    c.execute_batch(
        "CREATE TABLE u(a INTEGER PRIMARY KEY, b TEXT);
         CREATE INDEX ub ON u(b);
         CREATE VIEW v AS SELECT * FROM u;
         CREATE TRIGGER tu AFTER INSERT ON u BEGIN INSERT INTO t VALUES (new.a); END;
         INSERT INTO u(b) VALUES ('x');
         ALTER TABLE u ADD COLUMN c;
         ALTER TABLE u RENAME COLUMN c TO d;
         ALTER TABLE u DROP COLUMN d;
         ALTER TABLE u RENAME TO u2;
         ALTER TABLE u2 RENAME TO u;
         PRAGMA user_version = 3;
         DROP VIEW v;
         CREATE TABLE w(x);
         DROP TABLE w;
         SELECT * FROM _scribe_meta;
         SELECT * FROM temp.sqlite_master;
         ANALYZE;
         ANALYZE _scribe_requests;
         PRAGMA optimize;",
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", g.take_denial()));
    c.prepare("PRAGMA table_info(u)").unwrap();
    c.prepare("PRAGMA user_version").unwrap();
    c.prepare("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r").unwrap();
    assert_eq!(g.take_denial(), None);
}

#[test]
fn trusted_code_passes() {
    let (c, g) = guarded();
    g.trusted(|| c.execute_batch("BEGIN; UPDATE _scribe_meta SET value = 1; COMMIT"))
        .unwrap();
    assert!(c.prepare("BEGIN").is_err(), "the guard is back up");
}

#[test]
fn in_a_session_transaction_control_is_refused_in_a_session_s_words() {
    let (c, g) = guarded();
    assert!(refused(&c, &g, "BEGIN").contains("open a write session"));
    g.session(true);
    for sql in ["BEGIN", "COMMIT", "ROLLBACK"] {
        let rule = refused(&c, &g, sql);
        assert!(
            rule.contains("not statements of a write session"),
            "{sql}: {rule}"
        );
    }
    c.prepare("SAVEPOINT s").unwrap();
    assert!(g.take_session_only(), "a savepoint runs in the session");
}

#[test]
fn defer_foreign_keys_is_a_session_s_own() {
    let (c, g) = guarded();
    // A batch shares its transaction with the rest of its group.
    assert!(refused(&c, &g, "PRAGMA defer_foreign_keys=ON").contains("not allowed in a batch"));
    g.session(true);
    c.prepare("PRAGMA defer_foreign_keys=ON").unwrap();
    assert!(g.take_session_only(), "it runs in the session");
    c.prepare("PRAGMA defer_foreign_keys").unwrap();
    g.session(false);
    assert!(refused(&c, &g, "PRAGMA defer_foreign_keys").contains("not allowed in a batch"));
}
