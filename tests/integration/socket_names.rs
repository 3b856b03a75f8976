//! A database whose path is too long for a socket beside it is served on
//! a name under `$XDG_RUNTIME_DIR` (else `/tmp`) that anyone can compute.
//! Another process listening there first must get nothing (no SQL, no
//! parameters) and answer nothing a client believes; a file there the
//! arbiter cannot replace must not lock the database out.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use scribe_protocol::paths::fnv1a;

use crate::harness::{run, stderr, Env, COMMAND_TIMEOUT, SCRIBE};

/// An Env whose database path is too long for a socket beside it, and
/// the runtime directory its sockets fall back to.
fn long_env() -> (Env, PathBuf) {
    let mut env = Env::new();
    let deep = env.dir.path().join("d".repeat(60)).join("e".repeat(50));
    std::fs::create_dir_all(&deep).unwrap();
    env.db = deep.join("t.db");
    let xdg = env.dir.path().join("run");
    std::fs::create_dir_all(&xdg).unwrap();
    (env, xdg)
}

/// The fallback name of `kind` (`sock`, `http.sock`), as every process
/// derives it.
fn fallback(xdg: &Path, db: &Path, kind: &str) -> PathBuf {
    let db = std::fs::canonicalize(db.parent().unwrap())
        .unwrap()
        .join(db.file_name().unwrap());
    xdg.join(format!(
        "scribe-{:016x}.{kind}",
        fnv1a(db.as_os_str().as_encoded_bytes())
    ))
}

fn scribe(env: &Env, xdg: &Path, args: &[&str]) -> Output {
    let mut c: Command = env.command(SCRIBE);
    c.env("XDG_RUNTIME_DIR", xdg).args(args);
    run(c, COMMAND_TIMEOUT)
}

/// A listener of `nobody` (who may not write the database) at `path`,
/// appending what it hears to `heard`; `None` where the test cannot make
/// one (not root, or no `setpriv` or system Python).
fn squatter(dir: &Path, path: &Path, heard: &Path) -> Option<std::process::Child> {
    let python = Path::new("/usr/bin/python3");
    if !nix::unistd::geteuid().is_root()
        || !python.exists()
        || Command::new("setpriv").arg("--help").output().is_err()
    {
        eprintln!("needs root, setpriv and /usr/bin/python3: not run");
        return None;
    }
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let ready = dir.join("squatter.ready");
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_UNIX)\ns.bind({path:?})\ns.listen(8)\n\
         open({ready:?},'w').close()\nwhile True:\n c,_=s.accept()\n c.settimeout(2)\n \
         try:\n  d=c.recv(4096)\n except OSError:\n  d=b''\n open({heard:?},'ab').write(d)\n",
        path = path.display().to_string(),
        ready = ready.display().to_string(),
        heard = heard.display().to_string(),
    );
    let child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(python)
        .args(["-c", &script])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    while !ready.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the listener never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Some(child)
}

#[test]
fn a_process_listening_on_the_fallback_name_gets_nothing() {
    let (env, xdg) = long_env();
    let heard = env.dir.path().join("heard");
    let Some(mut listener) = squatter(&xdg, &fallback(&xdg, &env.db, "sock"), &heard) else {
        return;
    };
    let out = scribe(&env, &xdg, &["exec", "CREATE TABLE secret(x)"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = scribe(
        &env,
        &xdg,
        &["exec", "INSERT INTO secret VALUES ('hunter2')"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let _ = listener.kill();
    let _ = listener.wait();
    assert_eq!(env.count("SELECT count(*) FROM secret"), 1);
    let got = std::fs::read(&heard).unwrap_or_default();
    assert!(got.is_empty(), "the squatter heard {got:?}");
    scribe(&env, &xdg, &["stop"]);
}

#[test]
fn a_fallback_name_that_cannot_be_replaced_is_set_aside_and_followed() {
    let (env, xdg) = long_env();
    // Not a socket, and not replaceable by a rename (a directory).
    for kind in ["sock", "http.sock"] {
        let taken = fallback(&xdg, &env.db, kind);
        std::fs::create_dir_all(taken.join("x")).unwrap();
    }
    let out = scribe(&env, &xdg, &["exec", "CREATE TABLE t(x)"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = scribe(&env, &xdg, &["--json", "status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    let aside = format!("scribe-{:016x}-", {
        let db = std::fs::canonicalize(env.db.parent().unwrap())
            .unwrap()
            .join("t.db");
        fnv1a(db.as_os_str().as_encoded_bytes())
    });
    assert!(status.contains(&aside), "{status}");
    let lock = std::fs::read_to_string(format!("{}.scribe.lock", env.db.display())).unwrap();
    assert!(
        lock.contains(&format!("http_socket={}", xdg.display())),
        "{lock}"
    );
    let out = scribe(&env, &xdg, &["stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A socket named by `--socket` where another user listens: that user may
/// not write the database, so nothing is sent to it (run as root, with
/// the listener as `nobody`).
#[test]
fn a_listener_of_a_user_who_may_not_write_the_database_gets_nothing() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    env.scribe_ok(&["exec", "CREATE TABLE t(x)"]);
    let squat = env.dir.path().join("squat.sock");
    let heard = env.dir.path().join("heard");
    let Some(mut listener) = squatter(env.dir.path(), &squat, &heard) else {
        return;
    };
    let mut c = env.command(SCRIBE);
    c.args([
        "--socket",
        squat.to_str().unwrap(),
        "exec",
        "INSERT INTO t VALUES ('secret')",
    ]);
    let out = run(c, COMMAND_TIMEOUT);
    let _ = listener.kill();
    let _ = listener.wait();
    assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
    assert!(stderr(&out).contains("may not write"), "{}", stderr(&out));
    let got = std::fs::read(&heard).unwrap_or_default();
    assert!(got.is_empty(), "the listener heard {got:?}");
    assert_eq!(env.count("SELECT count(*) FROM t"), 0);
}

/// A symbolic link at a database's socket name, planted while its arbiter
/// starts (it holds the lock, the socket is not bound yet), leads to an
/// arbiter of the same user serving another database: nothing is sent
/// through it (writes for one database landed in the other).
#[test]
fn a_symlink_at_the_socket_name_is_not_followed() {
    let mut other = Env::new();
    other.start_arbiter(&[]);
    other.scribe_ok(&["exec", "CREATE TABLE t(x)"]);
    let env = Env::new();
    let m = env.dir.path().join("m");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(m.join("0001_t.sql"), "CREATE TABLE t(x);").unwrap();
    // Long enough that the link is planted while it runs.
    std::fs::write(
        m.join("0002_slow.sql"),
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 30000000) \
         SELECT count(*) FROM c;",
    )
    .unwrap();
    let mut arbiter = env.command(crate::harness::SCRIBED);
    arbiter
        .arg("--db")
        .arg(&env.db)
        .arg("--migrations")
        .arg(&m)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut arbiter = arbiter.spawn().unwrap();
    let lock = env.paths().lock;
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("pid=")) {
        assert!(std::time::Instant::now() < deadline, "no lock record");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let paths = env.paths();
    let _ = std::fs::remove_file(&paths.socket);
    std::os::unix::fs::symlink(other.paths().socket, &paths.socket).unwrap();
    let out = env.scribe(&["exec", "INSERT INTO t VALUES ('for t')"]);
    let _ = arbiter.kill();
    let _ = arbiter.wait();
    assert_eq!(
        other.count("SELECT count(*) FROM t"),
        0,
        "a write for one database landed in another: {}",
        stderr(&out)
    );
}

/// A socket given for another database (by hand, or by a `SCRIBE_SOCKET`
/// set for another program) leads to that database's arbiter: nothing is
/// sent to it, and it is neither displaced nor stopped. Before, the
/// writes meant for one database landed in the other; an arbiter started
/// for the first took the second's socket name, and the two took it back
/// from each other every second.
#[test]
fn a_socket_given_for_another_database_reaches_nothing() {
    let mut other = Env::new();
    let theirs_pid = other.start_arbiter(&[]);
    other.scribe_ok(&["exec", "CREATE TABLE t(x)"]);
    let theirs = other.paths().socket;
    let theirs = theirs.to_str().unwrap();
    let named = |out: &Output| {
        assert_eq!(out.status.code(), Some(16), "refused: {}", stderr(out));
        assert!(
            stderr(out).contains(other.db.to_str().unwrap()),
            "names the database served there: {}",
            stderr(out)
        );
    };
    let env = Env::new();
    // No arbiter of its own yet: the one started may not take the name.
    named(&env.scribe(&["--socket", theirs, "exec", "CREATE TABLE t(x)"]));
    // Its own arbiter, on its own socket; the other socket given again.
    env.scribe_ok(&["exec", "CREATE TABLE IF NOT EXISTS t(x)"]);
    named(&env.scribe(&["--socket", theirs, "exec", "INSERT INTO t VALUES ('mine')"]));
    named(&env.scribe(&["--socket", theirs, "status"]));
    let _ = env.scribe(&["--socket", theirs, "stop"]);
    assert_eq!(
        other.arbiter_pid(),
        Some(theirs_pid),
        "the other arbiter runs on"
    );
    assert_eq!(
        other.count("SELECT count(*) FROM t"),
        0,
        "nothing landed there"
    );
    other.scribe_ok(&["exec", "INSERT INTO t VALUES ('theirs')"]);
    assert_eq!(other.count("SELECT count(*) FROM t"), 1);
}

/// Another process that takes an arbiter's socket (binds elsewhere and
/// renames over it, as an arbiter of another database given the same
/// `--socket` at the same instant did) leaves the arbiter unreachable: it
/// stops, saying why, rather than hold its database for nothing (it kept
/// running, and its clients were told the socket serves the other one).
#[test]
fn an_arbiter_whose_socket_is_taken_stops() {
    let env = Env::new();
    let given = env.dir.path().join("given.sock");
    let given_str = given.to_str().unwrap();
    env.scribe_ok(&["--socket", given_str, "start"]);
    let pid = env.arbiter_pid().expect("started");
    let tmp = env.dir.path().join("other.tmp");
    let _other = std::os::unix::net::UnixListener::bind(&tmp).unwrap();
    std::fs::rename(&tmp, &given).unwrap();
    crate::harness::wait_gone(pid, COMMAND_TIMEOUT, "the arbiter runs on, unreachable");
    let log = std::fs::read_to_string(env.paths().log).unwrap();
    assert!(log.contains("took this arbiter's socket"), "{log}");
}

/// The arbiter a caller starts for its database exits at once, finding
/// its socket taken by another database's arbiter: the caller is told
/// whose socket it is (16), however soon that exit comes. The answer
/// depended on whether the caller asked before the exit (CI on a loaded
/// machine: 10, "exited before it was ready"); an arbiter that exits at
/// once (`/bin/false`) makes the late case certain.
#[test]
fn a_socket_taken_by_another_database_is_named_however_soon_ours_exits() {
    let mut other = Env::new();
    other.start_arbiter(&[]);
    let theirs = other.paths().socket;
    let env = Env::new();
    rusqlite::Connection::open(&env.db)
        .unwrap()
        .execute_batch("CREATE TABLE z(a)")
        .unwrap();
    let mut c = env.command(SCRIBE);
    c.args([
        "--socket",
        theirs.to_str().unwrap(),
        "exec",
        "CREATE TABLE t(x)",
    ])
    .env("SCRIBE_ARBITER_BIN", "/bin/false");
    let out = crate::harness::run(c, crate::harness::COMMAND_TIMEOUT);
    assert_eq!(out.status.code(), Some(16), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(other.db.to_str().unwrap()),
        "{}",
        stderr(&out)
    );
}
