//! One database shared by several Unix users: whoever starts the arbiter,
//! the others can take over after it, root included. Run as root only (the
//! test runs clients as other uids with `setpriv`).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::harness::{run, stderr, stdout, Env, SCRIBE};

const NOBODY: u32 = 65534;
const NOGROUP: u32 = 65534;
/// A second user, in the database's group only.
const OTHER: u32 = 65533;

/// Runs the CLI as `uid` with the one group nogroup.
fn as_user(env: &Env, uid: u32, args: &[&str]) -> Output {
    as_member(env, uid, NOGROUP, "", args)
}

/// Gives `p` to nobody:nogroup with `mode`.
fn owned(p: &Path, mode: u32) {
    nix::unistd::chown(
        p,
        Some(nix::unistd::Uid::from_raw(NOBODY)),
        Some(nix::unistd::Gid::from_raw(NOGROUP)),
    )
    .unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The shared layout: a directory and a database of the group, 0770 and
/// 0660, the database made by `nobody`; `None` where clients cannot be
/// run as other users (not root, or no setpriv).
fn group_layout() -> Option<Env> {
    if !nix::unistd::getuid().is_root() || !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("not root, or no setpriv: cannot run clients as other users here");
        return None;
    }
    let env = Env::new();
    owned(env.dir.path(), 0o770);
    std::fs::write(&env.db, b"").unwrap();
    owned(&env.db, 0o660);
    Some(env)
}

/// Whether the test runs as root (it says so when not: nothing to check).
fn running_as_root() -> bool {
    let root = nix::unistd::getuid().is_root();
    if !root {
        eprintln!("not root: nothing to check");
    }
    root
}

fn uid_of_process(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn owner_and_mode(p: &Path) -> (u32, u32) {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.mode() & 0o777)
}

#[test]
fn users_of_one_group_take_over_each_others_arbiter_and_root_leaves_it_theirs() {
    let Some(env) = group_layout() else { return };
    let paths = env.paths();

    // Root's first write starts the arbiter as the file's owner, and every
    // file it makes is the owner's, with the database's mode.
    env.scribe_ok(&["exec", "CREATE TABLE t(x)"]);
    let pid = env.arbiter_pid().expect("running");
    assert_eq!(uid_of_process(pid), NOBODY, "the arbiter runs as the owner");
    assert_eq!(owner_and_mode(&paths.log), (NOBODY, 0o660));
    assert_eq!(owner_and_mode(&paths.lock), (NOBODY, 0o660));
    assert_eq!(owner_and_mode(&paths.socket).0, NOBODY);

    // Another user of the group cannot use nobody's 0600 socket, and is
    // told what lets it in, at once.
    let out = as_user(&env, OTHER, &["exec", "INSERT INTO t VALUES (1)"]);
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("allow-uid = {OTHER}"))
            && stderr(&out).contains("socket-group"),
        "{}",
        stderr(&out)
    );

    // Once that arbiter is dead, its socket is stale: the other user's
    // next write starts an arbiter of its own, which replaces it.
    env.kill9_arbiter();
    let out = as_user(&env, OTHER, &["exec", "INSERT INTO t VALUES (2)"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let pid = env.arbiter_pid().expect("running");
    assert_eq!(uid_of_process(pid), OTHER);

    // Root may use any user's arbiter; the stop marker it leaves is the
    // group's to replace.
    env.scribe_ok(&["status"]);
    env.scribe_ok(&["stop"]);
    assert_eq!(owner_and_mode(&paths.stop_marker).1, 0o660);
    let out = as_user(&env, OTHER, &["start"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let out = as_user(&env, OTHER, &["stop", "--hold"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(env.count("SELECT count(*) FROM t WHERE x = 2"), 1);
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
}

#[test]
fn root_runs_only_what_root_could_change_and_stays_root_where_the_owner_could_not_write() {
    if !running_as_root() {
        return;
    }
    // A database of nobody's in root's own directory (copied there, say):
    // nobody could not make its -wal there, so the arbiter stays root.
    let env = Env::new();
    std::fs::write(&env.db, b"").unwrap();
    nix::unistd::chown(&env.db, Some(nix::unistd::Uid::from_raw(NOBODY)), None).unwrap();
    env.scribe_ok(&["exec", "CREATE TABLE t(x)"]);
    assert_eq!(uid_of_process(env.arbiter_pid().expect("running")), 0);
    env.scribe_ok(&["stop"]);

    // Root's arbiter takes no settings from a file another user owns: it
    // could load an extension or run migrations as root.
    let env = Env::new();
    let conf = env.paths().config;
    std::fs::write(&conf, "synchronous = normal\n").unwrap();
    nix::unistd::chown(&conf, Some(nix::unistd::Uid::from_raw(NOBODY)), None).unwrap();
    let out = env.scribe(&["exec", "CREATE TABLE t(x)"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("this arbiter runs as root"),
        "{}",
        stderr(&out)
    );
    nix::unistd::chown(&conf, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    env.scribe_ok(&["exec", "CREATE TABLE t(x)"]);
    env.scribe_ok(&["stop"]);
}

#[test]
fn a_user_cannot_keep_roots_start_root_by_closing_their_own_directory() {
    if !running_as_root() {
        return;
    }
    // nobody's directory, closed (0555) by nobody, with nobody's database:
    // root's start still runs as nobody (and fails to write there),
    // never as root in a directory nobody controls.
    let env = Env::new();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = env.dir.path().join("closed");
    std::fs::create_dir(&dir).unwrap();
    let db = dir.join("x.db");
    std::fs::write(&db, b"").unwrap();
    for p in [&db, &dir] {
        nix::unistd::chown(
            p.as_path(),
            Some(nix::unistd::Uid::from_raw(NOBODY)),
            Some(nix::unistd::Gid::from_raw(NOGROUP)),
        )
        .unwrap();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let mut c = env.command(SCRIBE);
    c.env("SCRIBE_DB", &db).args(["exec", "CREATE TABLE t(x)"]);
    let out = run(c, Duration::from_secs(60));
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&format!("as uid {NOBODY}, the database's owner")),
        "{}",
        stderr(&out)
    );
    let paths = scribe_protocol::Paths::for_db(&db, None).unwrap();
    assert!(!scribe_protocol::lockfile::is_held(&paths).unwrap());
}

/// Runs the CLI as `uid` with primary group `gid` and the supplementary
/// groups `groups` (comma-separated gids; empty: none).
fn as_member(env: &Env, uid: u32, gid: u32, groups: &str, args: &[&str]) -> Output {
    let mut c = env.command("/usr/bin/setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"));
    if groups.is_empty() {
        c.arg("--clear-groups");
    } else {
        c.arg(format!("--groups={groups}"));
    }
    c.arg(crate::harness::other_build(SCRIBE)).args(args);
    run(c, Duration::from_secs(60))
}

#[test]
fn allow_group_lets_in_the_members_of_a_group_by_their_supplementary_groups() {
    let Some(env) = group_layout() else { return };
    let paths = env.paths();
    // No allow-uid line: the group alone lets its members in.
    std::fs::write(
        &paths.config,
        "socket-group = nogroup\nallow-group = nogroup\n",
    )
    .unwrap();
    env.scribe_ok(&["exec", "CREATE TABLE t(x)"]);
    assert_eq!(uid_of_process(env.arbiter_pid().expect("running")), NOBODY);

    // A user whose primary group is another, in the group as a
    // supplementary one, as a login in that group has it.
    let primary = 65532;
    let nogroup = NOGROUP.to_string();
    let out = as_member(
        &env,
        OTHER,
        primary,
        &nogroup,
        &["exec", "INSERT INTO t VALUES (1)"],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    // The same user out of the group, let through the socket's mode (as a
    // socket of another group's would): the arbiter refuses it, naming
    // both settings.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o775)).unwrap();
    std::fs::set_permissions(&paths.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_member(
        &env,
        OTHER,
        primary,
        "",
        &["exec", "INSERT INTO t VALUES (2)"],
    );
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("may not write through this arbiter")
            && stderr(&out).contains(&format!("allow-uid = {OTHER}"))
            && stderr(&out).contains("allow-group"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.count("SELECT count(*) FROM t WHERE x = 1"), 1);
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
    env.scribe_ok(&["stop"]);
}
