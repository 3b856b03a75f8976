//! Schema migrations owned by the arbiter: any number of processes may
//! ask; each step runs once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::{stderr, stdout, Env, WORKER};

/// Writes migration files into a fresh directory of the test's.
pub(crate) fn dir(env: &Env, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = env.dir.path().join(name);
    std::fs::create_dir_all(&d).unwrap();
    for (file, sql) in files {
        std::fs::write(d.join(file), sql).unwrap();
    }
    d
}

pub(crate) const THREE: [(&str, &str); 3] = [
    (
        "0001_init.sql",
        "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    ),
    (
        "0002_add_done.sql",
        "ALTER TABLE notes ADD COLUMN done INTEGER NOT NULL DEFAULT 0;",
    ),
    (
        "0003_backfill.sql",
        "UPDATE notes SET done = 1 WHERE body LIKE 'old%';\n\
         INSERT INTO notes(body, done) VALUES ('old seed', 0);",
    ),
];

fn migrate(env: &Env, d: &Path) -> std::process::Output {
    env.scribe(&["migrate", d.to_str().unwrap()])
}

fn applied(env: &Env) -> i64 {
    env.count("SELECT count(*) FROM _scribe_migrations")
}

#[test]
fn sixteen_processes_migrate_at_once_and_each_step_runs_once() {
    let mut env = Env::new();
    let d = dir(&env, "m", &THREE);
    // No arbiter yet: the sixteen race to auto-start it, then to migrate.
    let workers: Vec<usize> = (0..16)
        .map(|n| {
            let mut c = env.command(WORKER);
            c.args(["migrate", d.to_str().unwrap(), &format!("p{n}")]);
            env.spawn(c)
        })
        .collect();
    let mut applied_by_calls = Vec::new();
    for w in workers {
        let out = env.wait(w, Duration::from_secs(120));
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        let report: serde_json::Value =
            serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
        assert_eq!(report["after"], 3, "{report}");
        applied_by_calls.extend(
            report["applied"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap()),
        );
    }
    applied_by_calls.sort_unstable();
    assert_eq!(applied_by_calls, [1, 2, 3], "each step applied by one call");
    assert_eq!(applied(&env), 3);
    assert_eq!(
        env.count("SELECT count(*) FROM notes WHERE body LIKE 'p%'"),
        16
    );
    // The backfill ran once: one seed row, every write has the column.
    assert_eq!(
        env.count("SELECT count(*) FROM notes WHERE body = 'old seed'"),
        1
    );
    assert_eq!(env.count("SELECT count(*) FROM notes WHERE done = 0"), 17);
}

#[test]
fn a_changed_migration_is_refused_and_nothing_is_applied() {
    let env = Env::new();
    let d = dir(&env, "m", &THREE[..2]);
    assert!(migrate(&env, &d).status.success());
    std::fs::write(d.join("0001_init.sql"), "CREATE TABLE notes(id, body);").unwrap();
    std::fs::write(d.join("0003_more.sql"), "CREATE TABLE more(x);").unwrap();
    let out = migrate(&env, &d);
    assert_eq!(out.status.code(), Some(14), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("migration 1 (init) differs"),
        "{}",
        stderr(&out)
    );
    assert_eq!(applied(&env), 2);
    assert_eq!(
        env.count("SELECT count(*) FROM sqlite_master WHERE name = 'more'"),
        0
    );
}

#[test]
fn a_failing_migration_is_rolled_back_whole_and_names_itself() {
    let env = Env::new();
    let d = dir(
        &env,
        "m",
        &[
            THREE[0],
            (
                "0002_broken.sql",
                "CREATE TABLE half(x);\nINSERT INTO half VALUES (1);\nINSERT INTO nope VALUES (1);",
            ),
        ],
    );
    let out = migrate(&env, &d);
    assert_eq!(out.status.code(), Some(15), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains("statement 3"), "{said}"); // the third, counted from 1
    assert!(
        said.contains("migration 2 (broken) was rolled back whole"),
        "{said}"
    );
    assert!(said.contains("no such table: nope"), "{said}");
    // Migration 1, which this call applied, stays: not "nothing was
    // written".
    assert!(
        said.contains("this call applied before it stay (1)"),
        "{said}"
    );
    assert!(!said.contains("nothing was written"), "{said}");
    assert_eq!(applied(&env), 1, "migration 1 stays, 2 is not recorded");
    // For programs, SQLite's own words.
    let out = env.scribe(&["--json", "migrate", d.to_str().unwrap()]);
    let json = stdout(&out);
    assert!(
        json.contains(r#""sqlite_message":"no such table: nope""#),
        "{json}"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM sqlite_master WHERE name = 'half'"),
        0
    );
    // A gap is refused before anything runs.
    let gap = dir(&env, "gap", &[THREE[0], ("0003_skip.sql", "SELECT 1;")]);
    let out = migrate(&env, &gap);
    assert_eq!(out.status.code(), Some(16), "{}", stderr(&out));
    assert!(stderr(&out).contains("without a gap"), "{}", stderr(&out));
}

/// SQLite stops reading a script at a NUL byte: a migration holding one
/// would apply what came before it and be recorded as done. One applied
/// that way by an older release still matches its record.
#[test]
fn a_migration_holding_a_nul_byte_is_refused_unless_it_was_applied_already() {
    let env = Env::new();
    let sql = "CREATE TABLE m(x);\0 CREATE TABLE m2(y);";
    let d = dir(&env, "nul", &[("0001_nul.sql", sql)]);
    let out = migrate(&env, &d);
    assert_eq!(out.status.code(), Some(16), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("NUL byte at offset 18"),
        "{}",
        stderr(&out)
    );
    assert_eq!(applied(&env), 0);
    assert_eq!(
        env.count("SELECT count(*) FROM sqlite_master WHERE name IN ('m', 'm2')"),
        0
    );
    // As an older release recorded it (cut short, as SQLite ran it).
    let m = scribe_protocol::migration::Migration::new(1, "nul", sql);
    env.scribe_ok(&["stop"]);
    env.sqlite()
        .execute(
            "INSERT INTO _scribe_migrations(version, name, checksum, applied_at) \
             VALUES (1, 'nul', ?1, 0)",
            [m.checksum()],
        )
        .unwrap();
    env.scribe_ok(&["start"]);
    let next = ("0002_next.sql", "CREATE TABLE next_step(x);");
    let d = dir(&env, "nul_then_next", &[("0001_nul.sql", sql), next]);
    let out = migrate(&env, &d);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(applied(&env), 2);
}

#[test]
fn an_arbiter_whose_migrations_fail_does_not_start_and_the_caller_is_told_why() {
    let env = Env::new();
    let d = dir(
        &env,
        "m",
        &[("0001_bad.sql", "CREATE TABLE t(x);\nSELEC 1;")],
    );
    // Through the database's settings file, as an operator would.
    std::fs::write(
        env.paths().config,
        format!("migrations = {}\n", d.display()),
    )
    .unwrap();
    let out = env.scribe(&["exec", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains("migration 1 (bad)"), "{said}");
    assert!(said.contains("syntax error"), "{said}");
    assert!(env.arbiter_pid().is_none(), "no arbiter runs");
    // Fixed, it starts and applies it before anyone writes.
    std::fs::write(d.join("0001_bad.sql"), "CREATE TABLE t(x);").unwrap();
    env.scribe_ok(&["exec", "INSERT INTO t VALUES (1)"]);
    assert_eq!(applied(&env), 1);
    let status: serde_json::Value =
        serde_json::from_str(&env.scribe_ok(&["--json", "status"])).unwrap();
    assert_eq!(status["schema_version"], 1);
}

#[test]
fn an_older_caller_against_a_newer_database_goes_on_and_is_told() {
    let env = Env::new();
    let d = dir(&env, "m", &THREE);
    assert!(migrate(&env, &d).status.success());
    let older = dir(&env, "old", &THREE[..2]);
    let out = migrate(&env, &older);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("at version 3, newer than these migrations (up to 2)"),
        "{}",
        stdout(&out)
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.scribe_ok(&["--json", "migrate", older.to_str().unwrap()]))
            .unwrap();
    assert_eq!(json["newer"], true);
    assert_eq!(applied(&env), 3);
}

#[test]
fn a_table_rebuild_runs_with_foreign_keys_off_and_checked_then_on_again() {
    let mut env = Env::new();
    env.start_arbiter(&["--pragma", "foreign_keys=on"]);
    let d = dir(
        &env,
        "m",
        &[
            (
                "0001_init.sql",
                "CREATE TABLE parent(id INTEGER PRIMARY KEY, name TEXT);\n\
                 CREATE TABLE child(id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent(id));\n\
                 INSERT INTO parent VALUES (1, 'a'), (2, 'b');\n\
                 INSERT INTO child VALUES (10, 1), (20, 2);",
            ),
            // SQLite's twelve-step rebuild: parent gains a NOT NULL name.
            (
                "0002_rebuild_parent.sql",
                "-- scribe: foreign_keys=off\n\
                 CREATE TABLE parent_new(id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '');\n\
                 INSERT INTO parent_new SELECT id, coalesce(name, '') FROM parent;\n\
                 DROP TABLE parent;\n\
                 ALTER TABLE parent_new RENAME TO parent;",
            ),
        ],
    );
    let out = migrate(&env, &d);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        env.count("SELECT count(*) FROM child JOIN parent ON parent.id = child.parent"),
        2
    );
    // Foreign keys are enforced again.
    let bad = env.scribe(&["exec", "INSERT INTO child VALUES (30, 99)"]);
    assert_eq!(bad.status.code(), Some(15), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("FOREIGN KEY"), "{}", stderr(&bad));
    // A rebuild that leaves a dangling row is caught before its commit.
    std::fs::write(
        d.join("0003_dangle.sql"),
        "-- scribe: foreign_keys=off\nDELETE FROM parent WHERE id = 2;",
    )
    .unwrap();
    let out = migrate(&env, &d);
    assert_eq!(out.status.code(), Some(15), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("foreign_key_check"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.count("SELECT count(*) FROM parent"), 2, "rolled back");
    assert_eq!(applied(&env), 2);
    let still = env.scribe(&["exec", "INSERT INTO child VALUES (31, 98)"]);
    assert_eq!(
        still.status.code(),
        Some(15),
        "foreign keys on after a failed step"
    );
}

#[test]
fn migrate_and_its_status_as_people_see_them() {
    let env = Env::new();
    let d = dir(&env, "m", &THREE[..2]);
    let mut shown = String::new();
    let mut step = |label: &str, args: &[&str]| {
        let out = env.scribe(args);
        shown.push_str(&format!(
            "$ scribe {label}\nexit {:?}\n{}{}\n",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        ));
    };
    let path = d.to_str().unwrap().to_owned();
    step("migrate --status", &["migrate", "--status"]);
    step("migrate DIR", &["migrate", &path]);
    step("migrate DIR (again)", &["migrate", &path]);
    std::fs::write(d.join(THREE[2].0), THREE[2].1).unwrap();
    step("migrate --status DIR", &["migrate", "--status", &path]);
    step("migrate DIR", &["migrate", &path]);
    step("migrate --status", &["migrate", "--status"]);
    for (name, file) in [("gap1", "0005_e.sql"), ("gap2", "0006_f.sql")] {
        let gap = dir(&env, name, &[(file, "CREATE TABLE g(x);")]);
        step("migrate GAP", &["migrate", gap.to_str().unwrap()]);
    }
    insta::with_settings!({
        filters => vec![
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]"),
            (r"/tmp/sc[A-Za-z0-9]+", "[DIR]"),
        ],
    }, {
        insta::assert_snapshot!("migrate_for_people", shown);
    });
}

/// `scribe stop` while the arbiter applies its migrations at open (no
/// socket yet, no signal handlers): the signal ends it, and the stop
/// stays in force; the next write does not start it (and the migration)
/// again.
#[test]
fn a_stop_during_migrations_at_open_stays_stopped() {
    let env = Env::new();
    // Endless, and on the CPU only: it runs until stopped.
    let d = dir(
        &env,
        "slow",
        &[(
            "0001_slow.sql",
            "CREATE TABLE t(x);\nSELECT count(*) FROM (WITH RECURSIVE c(x) AS \
             (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c);",
        )],
    );
    let log = env.dir.path().join("foreground.log");
    let mut c = env.command(crate::harness::SCRIBED);
    c.arg("--db")
        .arg(&env.db)
        .arg("--migrations")
        .arg(&d)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(env.dir.path().join("stderr.log")).unwrap());
    let mut child = c.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let said = || {
        std::fs::read_to_string(&log).unwrap_or_default()
            + &std::fs::read_to_string(env.dir.path().join("stderr.log")).unwrap_or_default()
    };
    while !said().contains("applying migrations at open") {
        assert!(std::time::Instant::now() < deadline, "{}", said());
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = env.scribe(&["stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    crate::harness::wait_exit(&mut child, Duration::from_secs(60));
    assert!(env.paths().stop_marker.exists());
    let out = env.scribe(&["exec", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(stderr(&out).contains("stopped"), "{}", stderr(&out));
    assert!(env.arbiter_pid().is_none(), "no arbiter started again");
}

/// `migrate --status` looks: on a database not made yet (a mistyped path)
/// it says nothing is applied, and makes nothing, nor starts an arbiter.
#[test]
fn migrate_status_on_a_missing_database_makes_nothing() {
    let env = Env::new();
    let out = env.scribe(&["migrate", "--status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("schema version 0"),
        "{}",
        stdout(&out)
    );
    assert!(!env.db.exists(), "the database was made");
    assert!(env.arbiter_pid().is_none(), "an arbiter was started");
}
