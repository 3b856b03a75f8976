//! A database whose path is too long for a socket beside it is served on
//! a name under `$XDG_RUNTIME_DIR` (else `/tmp`) that anyone can compute.
//! Another process listening there first must get nothing (no SQL, no
//! parameters) and answer nothing a client believes; a file there the
//! arbiter cannot replace must not lock the database out.

use std::io::Read;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

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

#[test]
fn a_process_listening_on_the_fallback_name_gets_nothing() {
    let (env, xdg) = long_env();
    let name = fallback(&xdg, &env.db, "sock");
    let squatter = UnixListener::bind(&name).unwrap();
    let heard = Arc::new(AtomicUsize::new(0));
    let h = heard.clone();
    std::thread::spawn(move || {
        for s in squatter.incoming() {
            let Ok(mut s) = s else { return };
            let h = h.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    h.fetch_add(n, Ordering::SeqCst);
                }
            });
        }
    });
    let out = scribe(&env, &xdg, &["exec", "CREATE TABLE secret(x)"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = scribe(
        &env,
        &xdg,
        &["exec", "INSERT INTO secret VALUES ('hunter2')"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.count("SELECT count(*) FROM secret"), 1);
    assert_eq!(
        heard.load(Ordering::SeqCst),
        0,
        "the squatter heard the SQL"
    );
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
