//! The CLI's exit codes and wording as the README's table gives them: a
//! value that does not parse is a usage error (2), in the shell too;
//! `.exit N`; a refusal names the limit that applied; a shell write that
//! timed out names the key that learns its outcome.

use std::io::Write;
use std::process::Stdio;

use crate::harness::{run, Env, COMMAND_TIMEOUT, LONG_LEASE, SCHEMA, SCRIBE};

/// `scribe shell` fed `script`: its exit code and stderr.
fn shell(env: &Env, script: &str) -> (Option<i32>, String) {
    shell_with(env, &[], script)
}

fn shell_with(env: &Env, flags: &[&str], script: &str) -> (Option<i32>, String) {
    let mut c = env.command(SCRIBE);
    c.args(flags).arg("shell").stdin(Stdio::piped());
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = crate::harness::output_within(child, COMMAND_TIMEOUT, "shell");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn parameters_that_do_not_parse_are_usage_errors() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    env.scribe_ok(&["exec", "CREATE TABLE t(x)"]);
    for bad in ["99999999999999999999", "x'0'", "hex:zz"] {
        let out = env.scribe(&["exec", "INSERT INTO t VALUES (?)", "-p", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        let out = env.scribe(&["query", "SELECT ?", "-p", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
    }
    let out = env.scribe(&["--json", "exec", "SELECT ?", "-p", "x'0'"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(r#""exit_code":2"#),
        "{out:?}"
    );
    // Several statements with -p: the flags and the SQL contradict each
    // other (helper 96: an Sql error pointing at --file, which refuses -p).
    let out = env.scribe(&[
        "exec",
        "INSERT INTO t VALUES (?); INSERT INTO t VALUES (2)",
        "-p",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("apply to one statement"),
        "{out:?}"
    );
    assert_eq!(env.count("SELECT count(*) FROM t"), 0);
}

#[test]
fn the_shell_exits_as_its_last_error_says_and_as_exit_asks() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    let (code, err) = shell(&env, ".mode bogus\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("(usage)"), "{err}");
    let (code, err) = shell(&env, "RELEASE a;\n");
    assert_eq!(code, Some(15), "{err}");
    assert!(err.contains("no such savepoint: a"), "{err}");
    let (code, err) = shell(&env, ".read /nonexistent/file.sql\n");
    assert_eq!(code, Some(1), "{err}");
    let (code, _) = shell(&env, "SELECT 1;\n.exit 3\nSELECT 2;\n");
    assert_eq!(code, Some(3));
    let (code, _) = shell(&env, ".mode bogus\n.exit 0\n");
    assert_eq!(code, Some(2), "a plain exit keeps the last error's code");
    let (code, _) = shell(&env, ".exit\n");
    assert_eq!(code, Some(0));
}

#[test]
fn an_sql_text_over_the_batch_limit_names_the_batch_limit() {
    let mut env = Env::new();
    env.start_arbiter(&["--max-batch-bytes", "100"]);
    let sql = format!("SELECT '{}'", "x".repeat(140));
    let mut c = env.command(SCRIBE);
    c.args(["exec", &sql]);
    let out = run(c, COMMAND_TIMEOUT);
    assert_eq!(out.status.code(), Some(16), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-batch-bytes"), "{err}");
    assert!(!err.contains("--max-sql-bytes"), "{err}");
}

#[test]
fn a_shell_write_that_timed_out_names_the_key_that_learns_its_outcome() {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    env.scribe_ok(&["exec", "CREATE TABLE k(v)"]);
    let holder = env.hold_writer("h");
    let insert = "INSERT INTO k VALUES (12)";
    let (code, err) = shell_with(&env, &["--timeout", "1s"], &format!("{insert};\n"));
    assert_eq!(code, Some(11), "{err}");
    let key = err
        .split("this statement's key was ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no key named: {err}"))
        .to_owned();
    holder.release();
    // The same key asks safely: written once, whether the first try went
    // through after the holder let go or this one writes it.
    let again = format!("{insert};");
    assert!(err.contains(&format!("--key {key} '{again}'")), "{err}");
    env.scribe_ok(&["exec", "--key", &key, &again]);
    env.scribe_ok(&["exec", "--key", &key, &again]);
    assert_eq!(env.count("SELECT count(*) FROM k"), 1);
}

#[test]
fn demo_and_bench_refuse_what_they_would_silently_ignore() {
    let env = Env::new();
    // They make their own databases: a --db given to them is refused.
    for args in [
        &["--db", "/tmp/x.db", "demo"][..],
        &["bench", "--db", "/tmp/x.db"][..],
    ] {
        let mut c = env.command(SCRIBE);
        c.args(args);
        let out = run(c, COMMAND_TIMEOUT);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--dir DIR"),
            "{args:?}: {out:?}"
        );
    }
    // A directory an earlier demo used would stop as it started.
    let used = env.dir.path().join("used");
    std::fs::create_dir(&used).unwrap();
    std::fs::write(used.join("kanban.db"), b"").unwrap();
    let mut c = env.command(SCRIBE);
    c.args(["demo", "--seconds", "1", "--dir"]).arg(&used);
    let out = run(c, COMMAND_TIMEOUT);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds an earlier demo"),
        "{out:?}"
    );
}

#[test]
fn exec_runs_several_statements_in_one_argument_as_one_batch() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    // As `sqlite3 DB "…; …"` runs them; a trigger's body keeps its own.
    let out = env.scribe_ok(&[
        "exec",
        "CREATE TABLE t(x UNIQUE); CREATE TABLE log(x); \
         CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.x); END; \
         INSERT INTO t VALUES (1);",
    ]);
    assert!(out.contains("4 statement(s)"), "{out}");
    assert_eq!(env.count("SELECT count(*) FROM log"), 1);
    // One atomic batch: the second fails, the first is not written, and
    // the message counts statements as a person does.
    let out = env.scribe(&["exec", "INSERT INTO t VALUES (2); INSERT INTO t VALUES (1)"]);
    assert_eq!(out.status.code(), Some(15), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("in statement 2 "), "{said}");
    assert!(said.contains("nothing was written"), "{said}");
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
}

/// A standard error that cannot be written (a full disk) does not hide how
/// the command ended: the CLI panicked writing its message there and
/// exited 101, whatever the outcome (helper 88).
#[test]
fn an_unwritable_standard_error_keeps_the_exit_code() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    let full = |args: &[&str]| {
        let mut c = env.command(crate::harness::SCRIBE);
        c.args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create("/dev/full").unwrap());
        let child = c.spawn().expect("spawn");
        crate::harness::output_within(child, crate::harness::COMMAND_TIMEOUT, "scribe")
            .status
            .code()
    };
    assert_eq!(full(&["exec", "INSERT INTO nope VALUES (1)"]), Some(15));
    assert_eq!(full(&["query", "SELECT * FROM nope"]), Some(15));
    assert_eq!(full(&["exec", "SELECT ?", "-p", "hex:zz"]), Some(2));
    assert_eq!(full(&["exec", "CREATE TABLE t(x)"]), Some(0));
    // With --json the error goes to standard output: unwritable too, it
    // keeps its code (it exited 1).
    let both = |args: &[&str]| {
        let mut c = env.command(crate::harness::SCRIBE);
        c.args(args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .stderr(std::fs::File::create("/dev/full").unwrap());
        let child = c.spawn().expect("spawn");
        crate::harness::output_within(child, crate::harness::COMMAND_TIMEOUT, "scribe")
            .status
            .code()
    };
    assert_eq!(
        both(&["--json", "exec", "INSERT INTO nope VALUES (1)"]),
        Some(15)
    );
    assert_eq!(both(&["--json", "query", "SELECT * FROM nope"]), Some(15));
    // A committed batch whose report cannot be written fails (1), and says
    // it was committed and how to see it again: a caller retrying on the
    // exit code alone would write it twice.
    for json in [false, true] {
        let mut c = env.command(crate::harness::SCRIBE);
        c.args(
            &[
                "--json",
                "exec",
                "INSERT INTO t VALUES (7)",
                "--key",
                "rep-7",
            ][usize::from(!json)..],
        )
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .stderr(std::process::Stdio::piped());
        let child = c.spawn().expect("spawn");
        let out = crate::harness::output_within(child, crate::harness::COMMAND_TIMEOUT, "scribe");
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(said.contains("committed (seq"), "{said}");
        assert!(said.contains("--key rep-7"), "{said}");
    }
    assert_eq!(env.count("SELECT count(*) FROM t WHERE x = 7"), 1);
}

/// A script read through `| head -1`: the reader goes away while the
/// shell writes a long result. That ends the shell quietly, but a
/// statement that failed before it still fails the run (helper 94: the
/// shell exited 0 there, hiding the error; sqlite3 exits non-zero).
#[test]
fn a_reader_that_goes_away_keeps_an_earlier_failure() {
    use std::io::BufRead;
    let mut env = Env::new();
    env.start_arbiter(&[]);
    env.scribe_ok(&["exec", SCHEMA]);
    let long = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r LIMIT 300000) \
                SELECT n FROM r;\n";
    for (script, expect) in [
        (format!(".mode list\n.headers off\n{long}"), 0),
        (format!(".mode list\n.headers off\nRELEASE a;\n{long}"), 15),
    ] {
        let mut child = env
            .command(SCRIBE)
            .arg("shell")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(script.as_bytes()).unwrap();
        drop(stdin);
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert_eq!(first, "1\n");
        // The reader has gone (dropped with its buffer) before the 300,000
        // rows could fit in the pipe.
        let out = crate::harness::output_within(child, COMMAND_TIMEOUT, "shell");
        assert_eq!(out.status.code(), Some(expect), "{script}: {out:?}");
    }
}

/// `--db` naming a directory, or no database at all, is a usage error
/// (2), said as such, and leaves nothing beside the directory (helper 96:
/// a read said the directory had two names, as hard links; a write failed
/// to lock it, exit 10, and left a log beside it; no database exited 1).
#[test]
fn a_directory_or_no_database_is_a_usage_error() {
    let env = Env::new();
    let dir = env.dir.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    let at = dir.to_str().unwrap();
    for args in [
        &["--db", at, "query", "SELECT 1"][..],
        &["--db", at, "exec", "SELECT 1"],
        &["--db", at, "status"],
    ] {
        let mut c = env.command(SCRIBE);
        c.args(args);
        let out = run(c, COMMAND_TIMEOUT);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains("is a directory"), "{said}");
    }
    let mut c = env.command(crate::harness::SCRIBED);
    c.args(["--db", at]);
    let out = run(c, COMMAND_TIMEOUT);
    assert_eq!(out.status.code(), Some(2), "scribed: {out:?}");
    let beside: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("data"))
        .collect();
    assert_eq!(beside, ["data"]);
    let mut c = env.command(SCRIBE);
    c.args(["exec", "SELECT 1"]).env_remove("SCRIBE_DB");
    let out = run(c, COMMAND_TIMEOUT);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
