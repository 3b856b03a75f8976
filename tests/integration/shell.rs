//! `scribe shell` fed a script on stdin: snapshots of every mode, and the
//! same script through the sqlite3 command line where the formats match.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{wait_exit, Env, COMMAND_TIMEOUT, SCRIBE};

/// Runs `program` with `script` on stdin; stdout and stderr in one file,
/// so that errors stay where they happened. Returns (exit code, output).
fn feed(mut c: Command, dir: &Path, script: &str) -> (Option<i32>, String) {
    let input = dir.join("script.sql");
    std::fs::write(&input, script).unwrap();
    let output = dir.join("output.txt");
    let out = File::create(&output).unwrap();
    c.stdin(File::open(&input).unwrap())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    let mut child = c.spawn().expect("spawn");
    let status = wait_exit(&mut child, COMMAND_TIMEOUT);
    (status.code(), std::fs::read_to_string(&output).unwrap())
}

/// As [`feed`], with stdout and stderr apart: (exit code, stdout, stderr).
pub(crate) fn feed_apart(
    mut c: Command,
    dir: &Path,
    name: &str,
    script: &str,
) -> (Option<i32>, String, String) {
    let input = dir.join(format!("{name}.sql"));
    std::fs::write(&input, script).unwrap();
    let (out, err) = (
        dir.join(format!("{name}.out")),
        dir.join(format!("{name}.err")),
    );
    c.stdin(File::open(&input).unwrap())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap());
    let mut child = c.spawn().expect("spawn");
    let status = wait_exit(&mut child, COMMAND_TIMEOUT);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    (status.code(), read(&out), read(&err))
}

/// `scribe shell FLAGS` with every stream piped, for a test that feeds
/// it as it goes: the child and its stdin.
fn piped_shell(env: &Env, flags: &[&str]) -> (std::process::Child, std::process::ChildStdin) {
    let mut c = env.command(SCRIBE);
    c.arg("shell")
        .args(flags)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

pub(crate) fn shell(env: &Env, script: &str) -> (Option<i32>, String) {
    let mut c = env.command(SCRIBE);
    c.arg("shell").env_remove("RUST_LOG");
    feed(c, env.dir.path(), script)
}

const SETUP: &str = "\
CREATE TABLE t(id INTEGER PRIMARY KEY, tag TEXT NOT NULL, r REAL, note TEXT);
CREATE INDEX t_tag ON t(tag);
INSERT INTO t(tag, r, note) VALUES ('a', 1.5, 'say \"hi\"'), ('b', NULL, 'x,y'), ('c', 1e20, NULL);
";

#[test]
fn a_script_in_every_mode_with_a_transaction_an_error_and_a_rollback() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    let script = format!(
        "{SETUP}.tables
.schema t
SELECT * FROM t ORDER BY id;
BEGIN;
INSERT INTO t(tag, r) VALUES ('d', -3.0) RETURNING id, tag;
INSERT INTO nope VALUES (1);
SELECT count(*) AS n FROM t;
COMMIT;
.mode line
SELECT id, tag, r FROM t WHERE id = 4;
BEGIN;
DELETE FROM t;
SELECT count(*) AS n FROM t;
ROLLBACK;
.mode json
SELECT id, tag, r, note FROM t ORDER BY id;
.mode csv
SELECT id, tag, r, note FROM t ORDER BY id;
.headers off
SELECT tag FROM t WHERE id < 3 ORDER BY id;
COMMIT;
.mode wide
"
    );
    let (code, out) = shell(&env, &script);
    insta::assert_snapshot!("shell_every_mode", out);
    // The last error was a usage error (.mode wide): exit code 2.
    assert_eq!(code, Some(2));
    assert_eq!(
        env.count("SELECT count(*) FROM t"),
        4,
        "the rollback kept every row"
    );
}

#[test]
fn an_error_exits_with_its_category_and_bail_stops_there() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    let (code, out) = shell(&env, "CREATE TABLE t(v);\nINSERT INTO t VALUES (1;\n");
    assert_eq!(code, Some(15), "{out}");
    let mut c = env.command(SCRIBE);
    c.args(["shell", "--bail"]);
    let (code, out) = feed(
        c,
        env.dir.path(),
        "INSERT INTO nope VALUES (1);\nINSERT INTO t VALUES (2);\n",
    );
    assert_eq!(code, Some(15), "{out}");
    assert_eq!(env.count("SELECT count(*) FROM t"), 0, "--bail stopped");
}

/// (exit code, stdout, stderr) of one run.
pub(crate) type Ran = (Option<i32>, String, String);

/// `script` through `scribe shell FLAGS` (on `env`'s database, whose
/// arbiter runs) and through sqlite3 (on a database of its own): both
/// runs, or `None` when sqlite3 is not installed.
pub(crate) fn both_shells(env: &Env, flags: &[&str], script: &str) -> Option<(Ran, Ran)> {
    let Some(mut theirs) = sqlite3() else {
        eprintln!("sqlite3 is not installed: the differential test did not run");
        return None;
    };
    let run = |c: Command, name: &str| feed_apart(c, env.dir.path(), name, script);
    let mut ours = env.command(SCRIBE);
    ours.arg("shell").args(flags).env_remove("RUST_LOG");
    theirs.arg(env.dir.path().join("theirs.db"));
    Some((run(ours, "ours"), run(theirs, "theirs")))
}

/// The sqlite3 command line, when installed (CI installs it).
pub(crate) fn sqlite3() -> Option<Command> {
    let found = Command::new("sqlite3")
        .arg("-version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found || std::env::var_os("CI").is_none(),
        "CI runs the differential test: install sqlite3"
    );
    found.then(|| Command::new("sqlite3"))
}

#[test]
fn the_shell_prints_what_sqlite3_prints_where_the_formats_match() {
    let Some(mut theirs) = sqlite3() else {
        eprintln!("sqlite3 is not installed: the differential test did not run");
        return;
    };
    let mut env = Env::new();
    env.start_arbiter(&[]);
    let mut script = format!("# a comment line, skipped\n{SETUP}.tables\n.schema t\n");
    for mode in ["table", "line", "json", "csv"] {
        script.push_str(&format!(
            ".mode {mode}\nSELECT id, tag, r, note, id * 2 AS twice FROM t ORDER BY id;\n\
             BEGIN;\nUPDATE t SET r = r * 2 WHERE tag = 'a';\n\
             SELECT tag, r FROM t WHERE tag = 'a';\nROLLBACK;\n\
             SELECT 1 AS one WHERE 0;\nSELECT NULL AS nada;\nSELECT '' AS empty;\n\
             SELECT 'abcde' AS ab, 'line1' || char(10) || 'line2' AS m, 7 AS n;\n"
        ));
    }
    // The last statement needs no `;`: sqlite3 runs it at the end of input
    // (and the one before it too).
    script.push_str("INSERT INTO t(tag) VALUES ('last');\nSELECT count(*) AS n FROM t");
    let (code, ours) = shell(&env, &script);
    assert_eq!(code, Some(0), "{ours}");
    // sqlite3 shows headers in csv mode only when asked; scribe by default.
    theirs.arg(env.dir.path().join("theirs.db"));
    let (code, expected) = feed(theirs, env.dir.path(), &format!(".headers on\n{script}"));
    assert_eq!(code, Some(0), "{expected}");
    assert!(expected.contains("1.0e+20"), "{expected}");
    assert!(expected.ends_with("4\r\n"), "{expected}");
    assert_eq!(ours, expected);
}

#[test]
fn after_an_error_the_rest_of_its_line_is_skipped_as_sqlite3_skips_it() {
    let Some(mut theirs) = sqlite3() else {
        eprintln!("sqlite3 is not installed: the differential test did not run");
        return;
    };
    let env = Env::new();
    let script = ".mode csv\n.headers on\n\
                  SELECT 1 AS one; SELECT x FROM nope; SELECT 3 AS three;\nSELECT 4 AS four;\n";
    let run = |c: Command, name: &str| feed_apart(c, env.dir.path(), name, script);
    let mut ours = env.command(SCRIBE);
    ours.arg("shell").env_remove("RUST_LOG");
    let ours = run(ours, "ours");
    theirs
        .args(["-csv", "-header"])
        .arg(env.dir.path().join("theirs.db"));
    let theirs = run(theirs, "theirs");
    // The errors are worded apart ("Parse error" there); the rows are not.
    assert_eq!(ours.1, "one\r\n1\r\nfour\r\n4\r\n");
    assert_eq!(ours.1, theirs.1);
    assert!(ours.0 != Some(0) && theirs.0 != Some(0));
    assert!(ours.2.contains("no such table: nope"), "{}", ours.2);
}

/// A transaction the arbiter ends (its lease lapsed) never half-commits:
/// the statements after it are refused until ROLLBACK or COMMIT, not run
/// one by one in autocommit.
#[test]
fn after_a_lapsed_transaction_the_rest_of_it_is_refused_until_it_is_ended() {
    use std::io::Write;
    let mut env = Env::new();
    env.start_arbiter(&["--session-idle", "500ms", "--session-total", "300s"]);
    env.scribe_ok(&["exec", "CREATE TABLE t(x)"]);
    let (child, mut stdin) = piped_shell(&env, &[]);
    stdin
        .write_all(b"BEGIN;\nINSERT INTO t VALUES (1);\n")
        .unwrap();
    stdin.flush().unwrap();
    // Held, then lapsed (the shell says nothing meanwhile).
    env.wait_status(|s| !s["session"].is_null());
    env.wait_status(|s| s["session"].is_null());
    stdin
        .write_all(
            b"INSERT INTO t VALUES (2);\nSELECT count(*) FROM t;\nBEGIN;\nCOMMIT;\n\
              INSERT INTO t VALUES (3);\n",
        )
        .unwrap();
    drop(stdin);
    let out = crate::harness::output_within(child, COMMAND_TIMEOUT, "shell");
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(18), "{said}");
    // The first statement after the lapse learns of it; the SELECT and
    // the BEGIN after it are refused.
    assert!(said.contains("near line 3 (expired)"), "{said}");
    assert_eq!(
        said.matches("this statement did not run").count(),
        2,
        "{said}"
    );
    assert!(said.contains("before this COMMIT"), "{said}");
    // Only the statement after the COMMIT ran, in autocommit.
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE x = 3"), 1);
}

/// A file that reads itself stops at sqlite3's nesting limit instead of
/// overflowing the stack, and a byte that is not UTF-8 does not end the
/// script: the lines after it still run.
#[test]
fn a_self_reading_file_stops_at_the_nesting_limit_and_bad_bytes_do_not_end_a_script() {
    let env = Env::new();
    let rec = env.dir.path().join("rec.sql");
    std::fs::write(&rec, format!("SELECT 'r';\n.read '{}'\n", rec.display())).unwrap();
    let mut c = env.command(SCRIBE);
    c.args(["shell", "--mode", "csv"]).env_remove("RUST_LOG");
    let script = format!(".read {}\n", rec.display());
    let (code, out, err) = feed_apart(c, env.dir.path(), "top", &script);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("input nesting limit (25) reached"), "{err}");
    let rows = out.lines().filter(|l| l.trim_end() == "r").count();
    assert_eq!(rows, 25, "{out}\n{err}");

    let input = env.dir.path().join("latin1.sql");
    std::fs::write(
        &input,
        b"SELECT 'before';\nSELECT 'caf\xe9';\nSELECT 'after';\n",
    )
    .unwrap();
    let mut c = env.command(SCRIBE);
    c.args(["shell", "--mode", "csv"])
        .env_remove("RUST_LOG")
        .stdin(File::open(&input).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = crate::harness::output_within(c.spawn().unwrap(), COMMAND_TIMEOUT, "shell");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("before") && printed.contains("caf\u{fffd}") && printed.contains("after"),
        "{printed}"
    );
}

/// JSON is for programs: a real that sqlite3's 15 digits would round is
/// written exactly (0.1+0.2 is not 0.3), and one they keep looks as it
/// does in sqlite3. A deadline of zero is refused as a usage error (every
/// write would commit and report a timeout).
#[test]
fn json_reals_read_back_exactly_and_a_zero_deadline_is_refused() {
    let env = Env::new();
    let (code, out) = shell(
        &env,
        ".mode json\nSELECT 0.1 + 0.2 AS v, 1e20 AS w, 1.5 AS x;\n",
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out.trim(),
        r#"[{"v":0.30000000000000004,"w":1.0e+20,"x":1.5}]"#
    );
    let zero = env.scribe(&["--timeout", "0", "exec", "SELECT 1"]);
    assert_eq!(zero.status.code(), Some(2));
    let said = String::from_utf8_lossy(&zero.stderr);
    assert!(said.contains("above zero"), "{said}");
}

/// Ctrl-C during a long query interrupts it and the script stops there,
/// as in sqlite3; the shell exits with a code of its own, never killed by
/// the signal.
#[test]
fn ctrl_c_interrupts_a_long_query_and_stops_the_script() {
    use std::io::{BufRead, BufReader, Write};
    use std::time::{Duration, Instant};
    let env = Env::new();
    let (mut child, mut stdin) = piped_shell(&env, &["--mode", "csv"]);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // Once this is answered, the shell is reading its input.
    stdin.write_all(b"SELECT 'ready' AS r;\n").unwrap();
    let mut line = String::new();
    while line.trim_end() != "ready" {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the shell ended");
    }
    stdin
        .write_all(
            b"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
              SELECT count(*) FROM n;\nSELECT 'after' AS a;\n",
        )
        .unwrap();
    // Until it ends: a Ctrl-C that lands before the query runs ends the
    // script too (130), one during it interrupts it (15).
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the shell never ended");
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    drop(stdin);
    assert!(!rest.contains("after"), "the script went on: {rest}");
    println!("the shell ended with {status:?}: {err}");
    match status.code() {
        Some(15) => assert!(err.contains("interrupted"), "{err}"),
        Some(130) => {}
        other => panic!("ended by {status:?} ({other:?}): {err}"),
    }
}
