//! `scribe query` output that streams: CSV and JSON results of any size in
//! bounded memory, `| head` stopping the query, and what a failure part
//! way through leaves.

use std::time::Duration;

use crate::harness::{stderr, stdout, Env, SCHEMA, SCRIBE};

/// Rows 1, 2, 3, … without end.
const ENDLESS: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c";

/// `sh -c SCRIPT` with `{scribe}` replaced by the build under test.
fn shell(env: &Env, script: &str) -> std::process::Output {
    let script = script.replace("{scribe}", &crate::harness::other_build(SCRIBE));
    let mut c = env.command("sh");
    c.args(["-c", &script]);
    crate::harness::run(c, Duration::from_secs(120))
}

/// Rows 1..=n, the `fail_at`th failing (`abs` of the smallest integer
/// overflows when SQLite steps to that row).
fn failing_at(n: u32, fail_at: u32) -> String {
    format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) \
         SELECT CASE WHEN x < {fail_at} THEN x ELSE abs(-9223372036854775807 - 1) END AS v FROM c"
    )
}

#[test]
fn query_csv_streams_a_result_with_no_end_until_its_reader_stops() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    // A result that never ends, in a process held to 1 GB of address
    // space: only a query that writes each row as it reads it (and stops
    // at the closed pipe) prints its first lines and exits.
    let out = shell(
        &env,
        &format!("ulimit -v 1000000; {{scribe}} query --csv '{ENDLESS}' | head -3"),
    );
    assert_eq!(stdout(&out), "x\n1\n2\n", "{}", stderr(&out));
}

#[test]
fn query_json_streams_a_result_with_no_end_until_its_reader_stops() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    // As for CSV: collecting the rows first runs out of memory.
    let out = shell(
        &env,
        &format!("ulimit -v 1000000; {{scribe}} --json query '{ENDLESS}' | head -c 25"),
    );
    assert_eq!(
        stdout(&out),
        r#"[{"x":1},{"x":2},{"x":3},"#,
        "{}",
        stderr(&out)
    );
}

#[test]
fn query_json_is_one_document_or_an_unclosed_array_with_the_error_on_stderr() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    // A small result is held whole: it prints whole, and a failure prints
    // the error alone, as one JSON document.
    let whole = env.scribe_ok(&["--json", "query", &failing_at(3, 10)]);
    assert_eq!(whole, "[{\"v\":1},{\"v\":2},{\"v\":3}]\n");
    let early = env.scribe(&["--json", "query", &failing_at(20, 10)]);
    assert_eq!(early.status.code(), Some(15), "{}", stderr(&early));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&early)).unwrap();
    assert_eq!(doc["error"]["category"], "sql", "{doc}");
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("integer overflow"));
    // Past what is held, rows were written already: the array stays open
    // (no parser takes it for the whole result) and the error goes to
    // stderr, with the same exit code.
    let late = env.scribe(&["--json", "query", &failing_at(400_000, 300_000)]);
    assert_eq!(late.status.code(), Some(15), "{}", stderr(&late));
    let text = stdout(&late);
    assert!(
        text.starts_with("[{\"v\":1},"),
        "{}",
        &text[..40.min(text.len())]
    );
    assert!(serde_json::from_str::<serde_json::Value>(&text).is_err());
    assert!(
        stderr(&late).contains("integer overflow"),
        "{}",
        stderr(&late)
    );
}

#[test]
fn json_outputs_write_an_infinite_real_as_sqlite_json_does() {
    let env = Env::new();
    env.scribe_ok(&["exec", "CREATE TABLE r(x REAL)"]);
    let receipt = env.scribe_ok(&[
        "--json",
        "exec",
        "INSERT INTO r VALUES (9e999), (-9e999) RETURNING x",
    ]);
    assert!(
        receipt.contains(r#""rows":[{"x":9.0e+999},{"x":-9.0e+999}]"#),
        "{receipt}"
    );
    // SQLite's own rendering, from the same rows, is the reference.
    let own = env.scribe_ok(&["--json", "query", "SELECT json_group_array(x) AS j FROM r"]);
    assert_eq!(own, "[{\"j\":\"[9.0e+999,-9.0e+999]\"}]\n");
    let rows = env.scribe_ok(&["--json", "query", "SELECT x FROM r ORDER BY rowid"]);
    assert_eq!(rows, "[{\"x\":9.0e+999},{\"x\":-9.0e+999}]\n");
    let out = shell(
        &env,
        &format!(
            "printf '.mode json\\nSELECT x FROM r ORDER BY rowid;\\n' | {{scribe}} --db {} shell",
            env.db.display()
        ),
    );
    assert_eq!(
        stdout(&out),
        "[{\"x\":9.0e+999},\n{\"x\":-9.0e+999}]\n",
        "{}",
        stderr(&out)
    );
}

#[test]
fn json_rows_keep_the_columns_order_and_a_repeated_name_as_sqlite3_json_does() {
    let env = Env::new();
    for sql in [
        "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)",
        "CREATE TABLE orders(id INTEGER PRIMARY KEY, user_id INT, total REAL)",
        "INSERT INTO users VALUES (1, 'ann')",
        "INSERT INTO orders VALUES (100, 1, 9.5)",
    ] {
        env.scribe_ok(&["exec", sql]);
    }
    // What `sqlite3 -json` prints for the same query: both ids, in order.
    let join = "SELECT * FROM orders JOIN users ON users.id = orders.user_id";
    let rows = env.scribe_ok(&["--json", "query", join]);
    assert_eq!(
        rows,
        "[{\"id\":100,\"user_id\":1,\"total\":9.5,\"id\":1,\"name\":\"ann\"}]\n"
    );
    let receipt = env.scribe_ok(&[
        "--json",
        "exec",
        "UPDATE orders SET total = 10.5 RETURNING total, id, user_id, id AS id",
    ]);
    assert!(
        receipt.contains(r#""rows":[{"total":10.5,"id":100,"user_id":1,"id":100}]"#),
        "{receipt}"
    );
}

#[test]
fn query_prints_reals_as_sqlite3_prints_them() {
    let env = Env::new();
    // What `sqlite3 -csv` prints for the same values: a real stays a real.
    let sql = "SELECT 1.0 AS a, 1e300 AS b, 2.5e-7 AS c, 100.0 AS d, 3 AS e";
    let out = env.scribe_ok(&["query", "--csv", sql]);
    assert_eq!(out, "a,b,c,d,e\n1.0,1.0e+300,2.5e-07,100.0,3\n");
    let table = env.scribe_ok(&["query", sql]);
    assert!(table.contains("1.0e+300"), "{table}");
    assert!(!table.contains("0000000000"), "{table}");
}

/// A statement without columns prints nothing (as in sqlite3), and output
/// that cannot be written (a full disk) fails the command instead of
/// exiting 0 with the rows lost.
#[test]
fn no_columns_print_nothing_and_a_full_output_fails() {
    let env = Env::new();
    env.scribe_ok(&["exec", "CREATE TABLE t(x)"]);
    assert_eq!(env.scribe_ok(&["query", "BEGIN"]), "");
    let mut c = env.command(crate::harness::SCRIBE);
    c.args(["query", "SELECT 1 AS one"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().unwrap();
    let out = crate::harness::output_within(child, crate::harness::COMMAND_TIMEOUT, "query");
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("cannot write to standard output"), "{said}");
}

/// A value holding terminal controls is shown in a table, not sent to the
/// terminal (an escape sequence in a row recoloured it, or hid rows).
#[test]
fn tables_show_control_characters_instead_of_sending_them() {
    let env = Env::new();
    env.scribe_ok(&[
        "exec",
        "CREATE TABLE t(x); INSERT INTO t VALUES ('a' || char(27) || '[2J' || char(13) || 'b')",
    ]);
    let out = env.scribe_ok(&["query", "SELECT x FROM t"]);
    assert!(out.contains("a^[[2J^Mb"), "{out}");
    let out = shell(&env, "echo 'SELECT x FROM t;' | {scribe} shell");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("a^[[2J^Mb"), "{shown}");
    assert!(!out.stdout.contains(&0x1b), "{shown}");
    // CSV and JSON carry the value as it is.
    let out = env.scribe_ok(&["query", "--csv", "SELECT x FROM t"]);
    assert!(out.contains('\u{1b}'), "{out:?}");
}

/// `VACUUM INTO` makes a copy of the database, as sqlite3 users make a
/// backup: it only reads the database, so `scribe query` and the shell
/// run it (before, the reader's belt refused it as a write, leaving an
/// empty file, and `scribe exec` refuses every VACUUM). A plain VACUUM
/// is still refused, and the database itself is not written.
#[test]
fn vacuum_into_makes_a_copy_as_a_read() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('a', 1), ('a', 2)"]);
    let copy = env.dir.path().join("copy.db");
    env.scribe_ok(&["query", "VACUUM INTO ?", "-p", copy.to_str().unwrap()]);
    let n: i64 = rusqlite::Connection::open(&copy)
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    let again = env.dir.path().join("again.db");
    let out = shell(
        &env,
        &format!(
            "printf \"VACUUM INTO '{}';\\n\" | {{scribe}} shell",
            again.display()
        ),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        again.metadata().is_ok_and(|m| m.len() > 0),
        "the shell's copy"
    );
    let out = env.scribe(&["query", "VACUUM"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert_eq!(env.count("SELECT count(*) FROM t"), 2);
}
