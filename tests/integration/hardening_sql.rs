//! Hardening, SQL side: what a batch can reach on the writer's one
//! connection, and how odd SQL and odd values are answered.

use crate::harness::{stderr, stdout, Env, SCHEMA};

/// Seq in the file now.
fn seq(env: &Env) -> i64 {
    env.count("SELECT seq FROM _scribe_seq")
}

#[test]
fn the_temp_schema_cannot_reach_scribes_tables_in_any_spelling() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('before', 1)"]);
    let mut attempts = Vec::new();
    for table in ["_scribe_meta", "_scribe_requests", "_scribe_seq"] {
        for name in [
            table.to_owned(),
            format!("main.{table}"),
            format!("MAIN.\"{}\"", table.to_ascii_uppercase()),
            format!("temp.{table}"),
        ] {
            attempts.extend([
                format!("CREATE TEMP TRIGGER tr AFTER UPDATE ON {name} BEGIN DELETE FROM main.t; END"),
                format!("CREATE TEMP TRIGGER r AFTER INSERT ON {name} BEGIN DELETE FROM {name}; END"),
                format!("CREATE TEMPORARY TRIGGER a BEFORE INSERT ON {name} BEGIN SELECT RAISE(ABORT, 'no'); END"),
                // The form SQLite accepts on a view (on a table it refuses it).
                format!("CREATE TEMP TRIGGER i INSTEAD OF INSERT ON {name} BEGIN DELETE FROM main.t; END"),
                format!("CREATE TEMP TABLE {name} AS SELECT 'seq' AS key, 0 AS value"),
                format!("CREATE TEMP VIEW {name} AS SELECT 'seq' AS key, 0 AS value"),
                format!("CREATE TABLE temp.x AS SELECT * FROM {name}"),
            ]);
        }
    }
    attempts.push("CREATE TEMP TABLE scratch(a)".into());
    attempts.push("CREATE TEMP VIEW v AS SELECT 1".into());
    for sql in &attempts {
        let out = env.scribe(&["exec", sql]);
        assert!(
            matches!(out.status.code(), Some(16) | Some(15)),
            "{sql}: accepted ({:?}) {}",
            out.status.code(),
            stdout(&out)
        );
    }
    // Nothing of it took: commits still count, keys still record, rows
    // stay, and a reused key replays instead of applying twice.
    let before = seq(&env);
    env.scribe_ok(&[
        "exec",
        "--key",
        "once",
        "INSERT INTO t(tag, i) VALUES ('after', 1)",
    ]);
    assert_eq!(seq(&env), before + 1, "the seq moves with each commit");
    let recorded = env.count("SELECT sum(n) FROM _scribe_requests");
    let again = env.scribe_ok(&[
        "exec",
        "--key",
        "once",
        "INSERT INTO t(tag, i) VALUES ('after', 1)",
    ]);
    assert!(again.contains("replayed"), "{again}");
    assert_eq!(env.count("SELECT count(*) FROM t"), 2);
    assert_eq!(
        env.count("SELECT sum(n) FROM _scribe_requests"),
        recorded,
        "the replay recorded no key"
    );
}

#[test]
fn odd_sql_gets_a_clear_category() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    for (sql, code, says) in [
        ("", 15, "holds no SQL"),
        ("   -- only a comment", 15, "holds no SQL"),
        ("/* x */", 15, "holds no SQL"),
        ("VACUUM", 16, "VACUUM"),
        ("/* x */ VACUUM", 16, "VACUUM"),
        ("vacuum INTO '/tmp/copy.db'", 16, "VACUUM"),
    ] {
        let out = env.scribe(&["exec", sql]);
        assert_eq!(out.status.code(), Some(code), "{sql:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{sql:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("API misuse"), "{}", stderr(&out));
    }
    // Two statements in one with a parameter, the second on a table the
    // first makes: the CLI refuses the contradiction itself (exit 2); a
    // client that sends it is told the reason, not "no such table".
    let two = "CREATE TABLE two(x); INSERT INTO two VALUES (?)";
    let out = env.scribe(&["exec", two, "-p", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let (rt, client) = crate::harness::client(&env.paths());
    let sent = scribe_protocol::Batch::one(
        scribe_protocol::Statement::new(two).params(vec![scribe_protocol::Value::Integer(1)]),
    );
    match rt.block_on(client.write(sent)) {
        Err(scribe_client::Error::Sql { message, .. }) => {
            assert!(message.contains("more than one SQL statement"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // The same through the reader (a byte-order mark is a blank to
    // SQLite's tokenizer).
    for sql in ["", ";", "  -- only a comment", "\u{feff}"] {
        let out = env.scribe(&["query", sql]);
        assert_eq!(out.status.code(), Some(15), "{sql:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("holds no SQL"),
            "{sql:?}: {}",
            stderr(&out)
        );
    }
    // A write given to `query` says where writes go.
    let out = env.scribe(&["query", "INSERT INTO t(tag, i) VALUES ('q', 1)"]);
    assert_eq!(out.status.code(), Some(15), "{}", stderr(&out));
    assert!(stderr(&out).contains("scribe exec"), "{}", stderr(&out));
    // A refusal names its statement in the field, not only the message.
    let out = env.scribe(&["--json", "exec", "BEGIN"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["category"], "refused");
    assert_eq!(v["error"]["statement"], 0, "{v}");
}

#[test]
fn integers_past_64_bits_are_refused_not_rounded() {
    let env = Env::new();
    env.scribe_ok(&["exec", "CREATE TABLE n(v)"]);
    for big in ["99999999999999999999", "9223372036854775808"] {
        let out = env.scribe(&["exec", "INSERT INTO n VALUES (?)", "-p", big]);
        // A value that does not fit: a usage error, as the README's table has it.
        assert_eq!(out.status.code(), Some(2), "{big}: {}", stderr(&out));
        assert!(stderr(&out).contains("64-bit"), "{}", stderr(&out));
    }
    env.scribe_ok(&[
        "exec",
        "INSERT INTO n VALUES (?)",
        "-p",
        "9223372036854775807",
    ]);
    assert_eq!(
        env.count("SELECT count(*) FROM n WHERE typeof(v) = 'real'"),
        0
    );
    assert_eq!(env.count("SELECT count(*) FROM n"), 1);
}

/// A program that writes the file directly and holds its write lock: the
/// arbiter's write waits SQLite's busy timeout, then fails `overloaded`
/// (exit 12, retryable) naming an outside writer. It failed as an SQL
/// error, "commit failed (SQLite code 5): database is locked", which the
/// README says scribe never answers and nobody retried.
#[test]
fn a_direct_writer_holding_the_lock_is_named_and_retryable() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    let direct = env.sqlite();
    direct.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = env.scribe(&["exec", "INSERT INTO t(tag, i) VALUES ('blocked', 1)"]);
    assert_eq!(out.status.code(), Some(12), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("writes the file directly"),
        "{}",
        stderr(&out)
    );
    direct.execute_batch("COMMIT").unwrap();
    // Once it lets go, writes go on.
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('after', 1)"]);
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
}
