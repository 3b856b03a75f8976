//! The arbiter's open-files limit: the connections it holds are what
//! its descriptors hold (a second one for an HTTP connection's hang-up
//! watch counted), and a caller past them is told so rather than left
//! waiting for an answer an arbiter out of descriptors cannot give.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use scribe_protocol::PROTOCOL_VERSION;

use crate::harness::{stderr, Env};

/// A running `scribed` under an open-files limit of `limit`; killed on drop.
struct Limited {
    child: std::process::Child,
    log: PathBuf,
}

impl Limited {
    fn start(env: &Env, limit: u64) -> Limited {
        use std::os::unix::process::CommandExt;
        let log = env.dir.path().join("arbiter.log");
        let mut c = env.command(crate::harness::SCRIBED);
        c.arg("--db").arg(&env.db);
        c.stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        // SAFETY: setrlimit is async-signal-safe; nothing else runs in the
        // child between fork and exec.
        unsafe {
            c.pre_exec(move || {
                nix::sys::resource::setrlimit(
                    nix::sys::resource::Resource::RLIMIT_NOFILE,
                    limit,
                    limit,
                )
                .map_err(std::io::Error::from)
            });
        }
        let child = c.spawn().unwrap();
        env.wait_ready(Duration::from_secs(30));
        Limited { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `status` is served again once the held connections close.
fn served_again(env: &Env) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !env.scribe(&["status"]).status.success() {
        assert!(Instant::now() < deadline, "never served again");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An arbiter whose open-files limit holds fewer connections than
/// `--max-connections`: its cap is lowered to what the limit holds, so a
/// caller past it is told the arbiter is full (`overloaded`, exit 12).
/// Out of descriptors, it could not accept that caller at all: `status`
/// waited for a hello answer and failed with a timeout (exit 11).
#[test]
fn an_arbiter_short_of_descriptors_tells_the_callers_it_cannot_hold() {
    let env = Env::new();
    let arbiter = Limited::start(&env, 200);
    let socket = env.paths().socket;
    // Connections greeted and held (as a pool's idle ones are: the hello
    // timeout does not end them), ten more at a time, until a caller is
    // told the arbiter is full: past what 200 descriptors hold, before.
    let hello = format!(r#"{{"hello":{{"version":{PROTOCOL_VERSION}}}}}"#);
    let mut frame = b"scribe\x01j".to_vec();
    frame.extend((hello.len() as u32).to_le_bytes());
    frame.extend(1u32.to_le_bytes());
    frame.extend(hello.as_bytes());
    let mut held: Vec<UnixStream> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = loop {
        held.extend((0..10).filter_map(|_| {
            let mut s = UnixStream::connect(&socket).ok()?;
            s.write_all(&frame).ok()?;
            Some(s)
        }));
        let out = env.scribe(&["status"]);
        if out.status.code() == Some(12) {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "status never answered overloaded ({:?}): {}\n{}",
            out.status.code(),
            stderr(&out),
            arbiter.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        stderr(&out).contains("most connections"),
        "{}",
        stderr(&out)
    );
    drop(held);
    served_again(&env);
}

/// HTTP connections take two descriptors (the hang-up watch's), and were
/// counted as one: under a 400-file limit (room for 240), 140 of them took
/// every descriptor, `status` on the RPC socket waited for a hello answer
/// that never came (exit 11), and the next HTTP caller got no answer.
/// Now the HTTP caller past what the descriptors hold is answered `429`,
/// and an RPC caller `overloaded` (exit 12).
#[test]
fn http_connections_count_their_second_descriptor() {
    let env = Env::new();
    let arbiter = Limited::start(&env, 400);
    let socket = env.paths().http_socket;
    let request = b"GET /v1/status HTTP/1.1\r\nHost: scribe\r\n\r\n";
    // Each connection is held once its answer's head has come (kept
    // alive, as a client's pool holds it); the first refused one is
    // answered 429 and closed.
    let open = |held: &mut Vec<UnixStream>| -> Option<String> {
        let mut s = UnixStream::connect(&socket).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(request).ok()?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).ok()?;
        let status = String::from_utf8_lossy(&head[9..12]).into_owned();
        if status == "200" {
            held.push(s);
        }
        Some(status)
    };
    let mut held: Vec<UnixStream> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match open(&mut held) {
            Some(s) if s == "200" => {}
            Some(s) if s == "429" => break,
            other => panic!(
                "connection {} was not answered: {other:?}\n{}",
                held.len() + 1,
                arbiter.log()
            ),
        }
        assert!(Instant::now() < deadline, "never refused: {}", held.len());
    }
    assert!(
        held.len() < 240,
        "{} held, each with two descriptors",
        held.len()
    );
    let out = env.scribe(&["status"]);
    assert_eq!(
        out.status.code(),
        Some(12),
        "{}\n{}",
        stderr(&out),
        arbiter.log()
    );
    assert!(
        stderr(&out).contains("open-files limit"),
        "{}",
        stderr(&out)
    );
    drop(held);
    served_again(&env);
}
