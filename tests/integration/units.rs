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
    stop_as_systemd(&env, "scribed@.service", UNIT, &mut arbiter);
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
}

/// What systemd does to stop a unit whose main process runs: its
/// `ExecStop=` if it has one, then its `KillSignal=` (SIGTERM) to the
/// main process; the arbiter drains and exits 0, so `Restart=on-failure`
/// leaves it stopped.
fn stop_as_systemd(env: &Env, name: &str, unit: &str, arbiter: &mut std::process::Child) {
    run_exec_stop(env, name, unit);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(arbiter.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_exit(arbiter, Duration::from_secs(40));
    assert!(status.success(), "{status}");
    assert_eq!(env.arbiter_pid(), None, "drained and gone");
}

/// Runs the unit's `ExecStop=`, if it has one, as systemd would.
fn run_exec_stop(env: &Env, name: &str, unit: &str) {
    let Some(line) = unit.lines().find_map(|l| l.strip_prefix("ExecStop=")) else {
        return;
    };
    let words: Vec<String> = line
        .replace("%h/.cargo/bin/scribe", SCRIBE)
        .replace("/usr/local/bin/scribe", SCRIBE)
        .replace("%f", env.db.to_str().unwrap())
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut c = env.command(&words[0]);
    c.args(&words[1..]);
    let out = run(c, Duration::from_secs(40));
    assert!(out.status.success(), "{name}'s ExecStop: {out:?}");
}

/// An arbiter started by a client serves the database; the unit started
/// then (or restarted after a crash) finds it and exits 0, "already
/// running"; systemd then stops the unit, which ran an `ExecStop=scribe
/// stop` also after a main process that exited by itself: that stopped
/// the client's arbiter, and the database was left unserved, auto-start
/// held off (helper 98). Each unit stops nothing that is not its own.
#[test]
fn a_unit_started_beside_another_arbiter_stops_nothing() {
    for (name, unit) in [
        ("scribed@.service", UNIT),
        ("scribed-shared@.service", SHARED),
    ] {
        let env = Env::new();
        env.scribe_ok(&["exec", SCHEMA]);
        let theirs = env.arbiter_pid().expect("auto-started");
        // The user unit's ExecStart for both: the shared one runs the same
        // scribed, as its service user.
        let start = command_line("ExecStart", &env);
        let mut c = env.command(&start[0]);
        c.args(&start[1..]);
        let out = run(c, Duration::from_secs(40));
        assert!(out.status.success(), "{name}: {out:?}");
        assert!(stdout(&out).contains("already running"), "{name}: {out:?}");
        // The main process has exited: systemd runs ExecStop, and has no
        // process to signal.
        run_exec_stop(&env, name, unit);
        assert_eq!(
            env.arbiter_pid(),
            Some(theirs),
            "{name} stopped another arbiter"
        );
        env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('served', 1)"]);
    }
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
    stop_as_systemd(&env, "scribed-shared@.service", SHARED, &mut arbiter);
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
}
