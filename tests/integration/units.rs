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

/// Runs a unit's `ExecStart` command until its arbiter answers.
fn spawn_ready(mut c: std::process::Command, env: &Env) -> std::process::Child {
    let arbiter = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.wait_ready(Duration::from_secs(10));
    arbiter
}

#[test]
fn the_systemd_unit_runs_and_drains_with_its_own_flags() {
    assert!(UNIT.contains("Restart=on-failure"));
    let env = Env::new();
    let start = command_line("ExecStart", &env);
    let mut c = env.command(&start[0]);
    c.args(&start[1..]);
    let mut arbiter = spawn_ready(c, &env);
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

const SHARED: &str = include_str!("../../deploy/systemd/scribed-shared@.service");

/// The shared unit's command line of `key=`, its group `nogroup`, run as
/// `nobody` in that group (the unit's `User=` and `Group=`).
fn shared_command(key: &str, env: &Env) -> std::process::Command {
    let line = SHARED
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in the shared unit"));
    let words: Vec<String> = line
        .replace("/usr/local/bin/scribed", SCRIBED)
        .replace("/usr/local/bin/scribe", SCRIBE)
        .replace("%f", env.db.to_str().unwrap())
        .replace("--socket-group app", "--socket-group nogroup")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut c = env.command("/usr/bin/setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(&words);
    c
}

#[test]
fn the_shared_unit_serves_every_user_of_its_group() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::getuid().is_root() || !std::path::Path::new("/usr/bin/setpriv").exists() {
        eprintln!("not root, or no setpriv: cannot run the unit's user here");
        return;
    }
    assert!(SHARED.contains("UMask=0007") && SHARED.contains("Restart=on-failure"));
    let env = Env::new();
    let group = |p: &std::path::Path, mode: u32| {
        nix::unistd::chown(p, None, Some(nix::unistd::Gid::from_raw(65534))).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    // The layout the unit's comment asks for: a group directory, a group
    // database, and the conf that lets a second user of the group in.
    group(env.dir.path(), 0o2770);
    std::fs::write(&env.db, b"").unwrap();
    group(&env.db, 0o660);
    let conf = env.paths().config;
    std::fs::write(&conf, "socket-group = nogroup\nallow-uid = 65533\n").unwrap();
    let mut arbiter = spawn_ready(shared_command("ExecStart", &env), &env);
    env.scribe_ok(&["exec", SCHEMA]);
    let mut user = env.command("/usr/bin/setpriv");
    user.args(["--reuid=65533", "--regid=65534", "--clear-groups", SCRIBE])
        .args(["exec", "INSERT INTO t(tag, i) VALUES ('user', 1)"]);
    let out = run(user, Duration::from_secs(40));
    assert!(out.status.success(), "{}", crate::harness::stderr(&out));
    let out = run(shared_command("ExecStop", &env), Duration::from_secs(40));
    assert!(out.status.success(), "{}", crate::harness::stderr(&out));
    assert!(wait_exit(&mut arbiter, Duration::from_secs(5)).success());
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
}
