//! Who may reach the arbiter: a peer of another uid is refused with how
//! to let it in, and a socket group opens both sockets to that group.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use scribe_protocol::PROTOCOL_VERSION;

use crate::harness::{run, stderr, stdout, Env, SCRIBE, WORKER};

#[test]
fn a_peer_of_another_uid_is_refused() {
    let Ok(setpriv) = which("setpriv") else {
        eprintln!("setpriv not available: covered by the unit test of the check");
        return;
    };
    if !nix::unistd::getuid().is_root() {
        eprintln!("not root: cannot run a client as another user here");
        return;
    }
    let mut env = Env::new();
    // Let `nobody` reach the socket at all, so that the peer check is what
    // stops it (the 0600 mode would stop it first otherwise).
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = env.dir.path().join("arbiter.log");
    env.start_arbiter_logged(&[], &log);
    std::fs::set_permissions(&env.paths().socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let version = PROTOCOL_VERSION.to_string();
    let as_nobody = |env: &Env| {
        let mut c = env.command(&setpriv);
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            WORKER,
            "hello",
            &version,
        ]);
        run(c, Duration::from_secs(20))
    };
    let out = as_nobody(&env);
    assert!(!out.status.success(), "nobody got in: {}", stdout(&out));
    // Told why, and how to be let in: not a bare closed connection.
    assert!(
        stdout(&out).contains("uid 65534 may not write through this arbiter")
            && stdout(&out).contains("allow-uid = 65534"),
        "{}",
        stdout(&out)
    );
    assert_eq!(out.status.code(), Some(16), "Refused's exit code");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("uid=65534") && logged.contains("not allowed"),
        "{logged}"
    );
    env.scribe_ok(&["status"]);
    env.scribe_ok(&["stop"]);

    // Allowed explicitly, it gets in.
    let mut env2 = Env::new();
    std::fs::set_permissions(env2.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    env2.start_arbiter(&["--allow-uid", "65534"]);
    std::fs::set_permissions(&env2.paths().socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&env2);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("hello: protocol {PROTOCOL_VERSION}")
    );
}

fn which(name: &str) -> Result<String, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
        .ok_or(())
}

#[test]
fn a_socket_group_opens_both_sockets_to_that_group() {
    use std::os::unix::fs::MetadataExt;
    let Ok(Some(group)) = nix::unistd::Group::from_name("nogroup") else {
        eprintln!("no group named nogroup here");
        return;
    };
    let mut env = Env::new();
    env.start_arbiter(&["--socket-group", "nogroup"]);
    for socket in [env.paths().socket, env.paths().http_socket] {
        let meta = std::fs::metadata(&socket).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o660, "{}", socket.display());
        assert_eq!(meta.gid(), group.gid.as_raw(), "{}", socket.display());
    }
    // Without the option: owner only.
    let mut plain = Env::new();
    plain.start_arbiter(&[]);
    let meta = std::fs::metadata(plain.paths().socket).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
}

/// A database the arbiter makes gets the mode SQLite gives a new one
/// (0644 less the umask), and so do the files beside it: under umask 000
/// they were world-writable (0666).
#[test]
fn a_new_database_and_its_files_get_sqlites_mode() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    // `Env::command` gives any program the test's environment.
    let mut c = env.command("sh");
    c.arg("-c")
        .arg("umask 000; exec \"$0\" exec 'CREATE TABLE t(x)'")
        .arg(crate::harness::other_build(SCRIBE));
    let out = run(c, crate::harness::COMMAND_TIMEOUT);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = env.db.display().to_string();
    for file in [
        db.clone(),
        format!("{db}-wal"),
        format!("{db}.scribe.lock"),
        format!("{db}.scribe.log"),
    ] {
        let mode = std::fs::metadata(&file).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o644, "{file}: {mode:o}");
    }
    env.scribe_ok(&["stop"]);
}

/// A log another user left, which this one may not append to (a group
/// member's auto-start that failed, say), is kept aside under its owner's
/// name: the database's owner is not locked out by it.
#[test]
fn another_users_log_is_set_aside_not_a_lock_out() {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() || Command::new("setpriv").arg("--help").output().is_err()
    {
        eprintln!("needs root and setpriv: not run");
        return;
    }
    let mut env = Env::new();
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let dir = env.dir.path().join("nobodys");
    std::fs::create_dir(&dir).unwrap();
    let nobody = nix::unistd::Uid::from_raw(65534);
    nix::unistd::chown(&dir, Some(nobody), None).unwrap();
    env.db = dir.join("t.db");
    let log = dir.join("t.db.scribe.log");
    std::fs::write(&log, "another user's log\n").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
    nix::unistd::chown(&log, Some(nix::unistd::Uid::from_raw(1)), None).unwrap();
    let mut c = env.command("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(crate::harness::other_build(SCRIBE))
        .args(["exec", "CREATE TABLE t(x)"]);
    let out = run(c, crate::harness::COMMAND_TIMEOUT);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::metadata(&log).unwrap().uid(), 65534);
    let kept = dir.join("t.db.scribe.log.uid1");
    assert_eq!(
        std::fs::read_to_string(kept).unwrap(),
        "another user's log\n"
    );
    env.scribe_ok(&["stop"]);
}
