//! A caller that sends requests and never reads the answers is closed
//! once they have waited `--hello-timeout` with nothing going out, on
//! either socket. Such connections stayed for ever: a few processes that
//! did this held every connection the arbiter had, and every other caller
//! was told `Overloaded` for as long as they liked (helper 87).

use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::harness::Env;

/// Writes `request` again and again, reading nothing, until the arbiter
/// closes the connection (a write fails with a broken pipe or a reset);
/// panics if it is still open after 60 s.
fn send_until_closed(s: &mut UnixStream, request: &[u8]) {
    s.set_nonblocking(true).unwrap();
    let mut sent = 0usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match s.write(&request[sent % request.len()..]) {
            Ok(w) => sent += w,
            // Full: the arbiter reads no more while its answers wait.
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {
                return;
            }
            Err(e) => panic!("writing: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "still open after 60 s unread ({sent} bytes sent)"
        );
    }
}

/// Waits until the arbiter's log says `line` (bounded).
fn wait_for_log(log: &std::path::Path, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains(line)
    {
        assert!(Instant::now() < deadline, "the log never said {line:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn callers_that_read_none_of_their_answers_are_closed_and_others_served() {
    let mut env = Env::new();
    let log = env.dir.path().join("scribed.log");
    env.start_arbiter_logged(&["--hello-timeout", "1s"], &log);
    let paths = env.paths();

    let mut rpc = UnixStream::connect(&paths.socket).unwrap();
    rpc.write_all(b"scribe\x01j").unwrap();
    let frame = |id: u32, body: &str| {
        let mut f = (body.len() as u32).to_le_bytes().to_vec();
        f.extend(id.to_le_bytes());
        f.extend(body.as_bytes());
        f
    };
    let hello = format!(
        r#"{{"hello":{{"version":{}}}}}"#,
        scribe_protocol::PROTOCOL_VERSION
    );
    rpc.write_all(&frame(1, &hello)).unwrap();
    send_until_closed(&mut rpc, &frame(2, r#"{"status":{}}"#));
    wait_for_log(
        &log,
        "closed a connection whose caller read none of its answers",
    );

    let mut http = UnixStream::connect(&paths.http_socket).unwrap();
    send_until_closed(&mut http, b"GET /v1/status HTTP/1.1\r\nhost: x\r\n\r\n");
    wait_for_log(
        &log,
        "closed an HTTP connection whose caller read none of its answers",
    );
    // Everyone else is served meanwhile and after.
    env.scribe_ok(&["exec", "CREATE TABLE t(x)"]);
    assert_eq!(env.count("SELECT count(*) FROM t"), 0);
}
