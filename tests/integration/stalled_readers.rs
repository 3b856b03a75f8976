//! A caller that sends requests and never reads the answers is closed
//! once it has taken none of them for `--send-timeout`, on either
//! socket. Such connections stayed for ever: a few processes that
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

/// One JSON frame of the socket protocol: its length, its id, its body.
fn frame(id: u32, body: &str) -> Vec<u8> {
    let mut f = (body.len() as u32).to_le_bytes().to_vec();
    f.extend(id.to_le_bytes());
    f.extend(body.as_bytes());
    f
}

/// A connection to the RPC socket at `socket` that has sent its preamble
/// and hello (the hello's answer not read).
fn greeted(socket: &std::path::Path) -> UnixStream {
    let mut s = UnixStream::connect(socket).unwrap();
    s.write_all(b"scribe\x01j").unwrap();
    let hello = format!(
        r#"{{"hello":{{"version":{}}}}}"#,
        scribe_protocol::PROTOCOL_VERSION
    );
    s.write_all(&frame(1, &hello)).unwrap();
    s
}

#[test]
fn callers_that_read_none_of_their_answers_are_closed_and_others_served() {
    let mut env = Env::new();
    let log = env.dir.path().join("scribed.log");
    env.start_arbiter_logged(&["--send-timeout", "1s"], &log);
    let paths = env.paths();

    let mut rpc = greeted(&paths.socket);
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

/// Reads from `s` a little at a time, pausing between reads, until `done`
/// says what came is whole; what came.
fn read_slowly(s: &mut UnixStream, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    use std::io::Read;
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
    while !done(&got) {
        let n = s
            .read(&mut buf)
            .expect("the arbiter cut a caller that was reading");
        assert!(n > 0, "the arbiter closed a caller that was reading");
        got.extend_from_slice(&buf[..n]);
        std::thread::sleep(Duration::from_millis(100));
    }
    got
}

/// A caller that reads its answer slowly but steadily (here 40 KB/s,
/// where the socket shows progress 36 KB at a time: a chunk every second
/// against a 5 s limit) is not cut: the socket says it is writable again
/// only once about half its buffer has drained, seconds with no write
/// going out (helper 90: one reading 10 KB/s of a 400 KB answer was cut,
/// its write's outcome lost).
#[test]
fn a_caller_reading_slowly_but_steadily_is_not_cut() {
    let mut env = Env::new();
    let log = env.dir.path().join("scribed.log");
    env.start_arbiter_logged(&["--send-timeout", "5s"], &log);
    let paths = env.paths();
    // An answer of about 300 KB.
    let sql = "SELECT hex(zeroblob(150000)) AS h";

    let rpc = std::thread::spawn({
        let socket = paths.socket.clone();
        move || {
            let mut s = greeted(&socket);
            let write = format!(r#"{{"write":{{"statements":[{{"sql":"{sql}"}}]}}}}"#);
            s.write_all(&frame(2, &write)).unwrap();
            // Two frames: the hello's answer, then the write's.
            let whole = |b: &[u8]| {
                let mut at = 0;
                for _ in 0..2 {
                    let Some(head) = b.get(at..at + 8) else {
                        return false;
                    };
                    at += 8 + u32::from_le_bytes(head[..4].try_into().unwrap()) as usize;
                }
                b.len() >= at
            };
            read_slowly(&mut s, whole).len()
        }
    });
    let http = std::thread::spawn({
        let socket = paths.http_socket.clone();
        move || {
            let mut s = UnixStream::connect(socket).unwrap();
            let body = format!(r#"{{"statements":[{{"sql":"{sql}"}}]}}"#);
            let request = format!(
                "POST /v1/write HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(request.as_bytes()).unwrap();
            let whole = |b: &[u8]| {
                let text = String::from_utf8_lossy(b);
                let Some((head, rest)) = text.split_once("\r\n\r\n") else {
                    return false;
                };
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .expect("a content-length");
                rest.len() >= length
            };
            read_slowly(&mut s, whole).len()
        }
    });
    assert!(rpc.join().unwrap() > 300_000);
    assert!(http.join().unwrap() > 300_000);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(!said.contains("read none of its answers"), "{said}");
}
