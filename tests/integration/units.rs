//! The service units run the arbiter with the flags they declare.

use std::process::Stdio;
use std::time::Duration;

use crate::harness::{run, stdout, wait_exit, Env, SCHEMA, SCRIBE, SCRIBED};

const UNIT: &str = include_str!("../../deploy/systemd/scribed@.service");

/// The command line of `key=` in the unit, with the unit's specifiers
/// replaced by this test's binaries and database.
fn command_line(key: &str, env: &Env) -> Vec<String> {
    let line = UNIT
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in the unit"));
    line.replace("%h/.cargo/bin/scribed", SCRIBED)
        .replace("%h/.cargo/bin/scribe", SCRIBE)
        .replace("%f", env.db.to_str().unwrap())
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_systemd_unit_runs_and_drains_with_its_own_flags() {
    assert!(UNIT.contains("Restart=on-failure"));
    let env = Env::new();
    let start = command_line("ExecStart", &env);
    let mut arbiter = env
        .command(&start[0])
        .args(&start[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.wait_ready(Duration::from_secs(10));
    env.scribe_ok(&["exec", SCHEMA]);
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('unit', 1)"]);
    let stop = command_line("ExecStop", &env);
    let mut c = env.command(&stop[0]);
    c.args(&stop[1..]);
    let out = run(c, Duration::from_secs(40));
    assert!(out.status.success());
    assert!(
        stdout(&out).starts_with("stopped scribed"),
        "{}",
        stdout(&out)
    );
    // ExecStop returned: the arbiter is gone, with status 0, so
    // Restart=on-failure leaves it stopped.
    let status = wait_exit(&mut arbiter, Duration::from_secs(5));
    assert!(status.success());
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
}
