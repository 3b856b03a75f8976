//! Hardening, resource side: a stalled body, a flood of connections from
//! one process, huge bodies, huge values, a lost connection mid-write.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::harness::{stderr, stdout, Env, LONG_LEASE, SCHEMA, SCRIBE};

/// Sends `request` on a new HTTP connection and reads the answer (until
/// the server closes or `within` passes).
fn http_raw(env: &Env, request: &[u8], within: Duration) -> String {
    let mut s = UnixStream::connect(env.paths().http_socket).unwrap();
    s.set_read_timeout(Some(within)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

#[test]
fn stalled_bodies_cannot_lock_anyone_out() {
    let mut env = Env::new();
    env.start_arbiter(&[
        "--max-connections",
        "64",
        "--max-peer-connections",
        "16",
        "--hello-timeout",
        "5s",
    ]);
    env.scribe_ok(&["exec", SCHEMA]);
    // 70 connections from this one process, each announcing a body of 100
    // bytes and sending 4.
    let mut stalled = Vec::new();
    for _ in 0..70 {
        let mut s = UnixStream::connect(env.paths().http_socket).unwrap();
        s.write_all(b"POST /v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123")
            .unwrap();
        stalled.push(s);
    }
    // Another process still writes, at once.
    let started = Instant::now();
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('other', 1)"]);
    println!(
        "a write beside 70 stalled connections took {:?}",
        started.elapsed()
    );
    // Those over the per-process cap were told so; the others are cut
    // once their body is late.
    let (mut told, mut cut) = (0, 0);
    for mut s in stalled {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        if out.starts_with("HTTP/1.1 429") {
            assert!(out.contains("--max-peer-connections"), "{out}");
            told += 1;
        } else {
            assert!(status_line(&out).contains("408"), "{out:?}");
            cut += 1;
        }
    }
    assert_eq!((told, cut), (54, 16));
}

/// Room is held from a body's announced size, before the body comes: a
/// process that announces large bodies and never sends them holds its own
/// share of the budget, and the other processes write on.
#[test]
fn bodies_announced_and_never_sent_stall_only_their_own_process() {
    let mut env = Env::new();
    // Late bodies are cut only after five minutes: longer than this test.
    env.start_arbiter(&["--hello-timeout", "300s"]);
    env.scribe_ok(&["exec", SCHEMA]);
    // Twelve announced 16 MB bodies cost more than the whole budget.
    let mut stalled = Vec::new();
    for _ in 0..12 {
        let mut s = UnixStream::connect(env.paths().http_socket).unwrap();
        s.write_all(
            b"POST /v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: 16000000\r\n\r\n{\"sta",
        )
        .unwrap();
        stalled.push(s);
    }
    // Another process writes as if they were not there (it starts a
    // process first, by when the heads have been read: when one process
    // could hold the whole budget, this write waited for the bodies to be
    // cut, five minutes).
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('other', 1)"]);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'other'"), 1);
    drop(stalled);
}

#[test]
fn huge_bodies_cost_a_bounded_amount_of_memory() {
    let mut env = Env::new();
    let pid = env.start_arbiter(&[]);
    env.scribe_ok(&["exec", SCHEMA]);
    // 8 million parameters in 16 MB, six at once.
    let params = "0,".repeat(8_000_000);
    let body = format!(
        r#"{{"statements":[{{"sql":"SELECT 1","params":[{}0]}}]}}"#,
        params
    );
    let request = post("/v1/write", &body);
    let answers: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| http_raw(&env, &request, Duration::from_secs(60))))
            .collect();
        let started = Instant::now();
        env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('beside', 1)"]);
        println!(
            "a write beside six 16 MB bodies took {:?}",
            started.elapsed()
        );
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for a in &answers {
        assert!(status_line(a).contains("413"), "{}", status_line(a));
        assert!(a.contains("--max-params"), "{a}");
        assert!(a.len() < 2000, "the answer does not echo the body");
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    println!(
        "arbiter peak RSS under six 16 MB bodies: {} MiB",
        peak_kib / 1024
    );
    // The documented bound: requests in flight hold at most
    // --max-inflight-bytes (256 MiB), beside the arbiter's own ~64 MiB.
    assert!(peak_kib < (256 + 64) * 1024, "peak {peak_kib} KiB");
    // A nested parameter is not echoed back whole either.
    let nested = format!(
        r#"{{"statements":[{{"sql":"SELECT ?","params":[[{}]]}}]}}"#,
        "1,".repeat(100_000) + "1"
    );
    let a = http_raw(&env, &post("/v1/write", &nested), Duration::from_secs(30));
    assert!(status_line(&a).contains("400"), "{}", status_line(&a));
    assert!(a.len() < 2000, "{} bytes", a.len());
}

/// A burst of writes, `size`-byte blobs tagged `tag`, as frames.
fn burst(tag: &str, n: u32, size: usize) -> Vec<u8> {
    use scribe_protocol::frame::Request;
    use scribe_protocol::{Batch, Statement, Value};
    let mut out = Vec::new();
    for i in 1..=n {
        let write = Request::Write(Batch::one(
            Statement::new("INSERT INTO t(tag, i) VALUES (?1, ?2 + 0 * length(?3))").params(vec![
                Value::Text(tag.into()),
                Value::Integer(i.into()),
                Value::Blob(vec![7; size]),
            ]),
        ));
        scribe_protocol::frame::encode(i, &write, &mut out).unwrap();
    }
    out
}

/// Sends `bytes` from a thread (the arbiter may stop reading midway);
/// the first answer must be the `Overloaded` said to the whole
/// connection (the writer is held: no write is answered before it).
fn until_overloaded(
    raw: &mut scribe_tests::raw::Raw,
    bytes: Vec<u8>,
) -> std::thread::JoinHandle<()> {
    use scribe_protocol::WriteError;
    let mut sender = raw.stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let _ = sender.write_all(&bytes);
    });
    match raw.recv() {
        Some((0, Err(WriteError::Overloaded { reason, .. }))) => {
            assert!(reason.contains("memory"), "{reason}");
            sending
        }
        other => panic!("expected Overloaded for a frame with no room, got {other:?}"),
    }
}

#[test]
fn frames_read_together_each_hold_room_in_the_budget() {
    let mut env = Env::new();
    env.start_arbiter(
        &[
            &["--max-inflight-bytes", "67108864", "--hello-timeout", "3s"][..],
            &LONG_LEASE,
        ]
        .concat(),
    );
    env.scribe_ok(&["exec", SCHEMA]);
    let holder = env.hold_writer("holder");
    // With the writer held, writes of 16 KB fill the 64 MiB budget (each
    // costs about 34 times its size; having arrived, they hold no share of
    // their process) until one finds no room: its connection is told, and
    // the budget has less than one of them left.
    let mut a = scribe_tests::raw::Raw::greeted(&env.paths().socket);
    let sending_a = until_overloaded(&mut a, burst("a", 400, 16_000));
    // Thirty writes of 4 KB in one send, all read at once: at most three
    // fit what is left; the others must wait (and be refused), not run.
    let mut b = scribe_tests::raw::Raw::greeted(&env.paths().socket);
    let sending_b = until_overloaded(&mut b, burst("b", 30, 4_000));
    holder.release();
    let answered = |raw: &mut scribe_tests::raw::Raw| {
        let mut ids = Vec::new();
        while let Some((id, reply)) = raw.recv() {
            assert!(reply.is_ok(), "{id}: {reply:?}");
            ids.push(id);
        }
        ids.sort_unstable();
        ids
    };
    let (in_a, in_b) = (answered(&mut a), answered(&mut b));
    assert!(in_b.len() <= 4, "{} of the 30 ran: {in_b:?}", in_b.len());
    for (tag, ids, sent) in [("a", &in_a, 400), ("b", &in_b, 30)] {
        assert!(ids.len() < sent, "{tag}: {ids:?}");
        assert_eq!(*ids, (1..=ids.len() as u32).collect::<Vec<_>>(), "{tag}");
        assert_eq!(
            env.count(&format!("SELECT count(*) FROM t WHERE tag = '{tag}'")),
            ids.len() as i64
        );
    }
    for (raw, sending) in [(a, sending_a), (b, sending_b)] {
        let _ = raw.stream.shutdown(std::net::Shutdown::Both);
        sending.join().unwrap();
    }
}

#[test]
fn one_heavy_value_cannot_outrun_the_budget() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    for sql in [
        "SELECT randomblob(1000000000)",
        "CREATE TABLE b AS SELECT zeroblob(900000000) AS v",
    ] {
        let started = Instant::now();
        let out = env.scribe(&["exec", sql]);
        assert_eq!(out.status.code(), Some(15), "{sql}: {}", stderr(&out));
        assert!(stderr(&out).contains("too big"), "{}", stderr(&out));
        println!("{sql}: refused in {:?}", started.elapsed());
    }
    let wal = std::fs::metadata(env.paths().wal()).map_or(0, |m| m.len());
    assert!(wal < 16 * 1024 * 1024, "WAL of {wal} bytes");
}

#[test]
fn a_write_cut_off_by_a_crash_is_reported_as_unknown_not_unavailable() {
    let mut env = Env::new();
    env.start_arbiter(&["--batch-budget", "600s"]);
    env.scribe_ok(&["exec", SCHEMA]);
    // 5,000 inserts, then a statement that keeps the writer busy until
    // the arbiter is killed.
    let mut script: String = (0..5000)
        .map(|i| format!("INSERT INTO t(tag, i) VALUES ('big', {i});\n"))
        .collect();
    script.push_str(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
         WHERE x < 2000000000) SELECT count(*) FROM c;\n",
    );
    let file = env.dir.path().join("big.sql");
    std::fs::write(&file, script).unwrap();
    let mut c = env.command(SCRIBE);
    c.args(["--timeout", "600s", "exec", "--file"]).arg(&file);
    let writer = env.spawn(c);
    env.wait_status(|s| s["writing_for_ms"].as_u64() > Some(0));
    env.kill9_arbiter();
    let out = env.wait(writer, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(11),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("may or may not have committed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn small_http_answers_match_what_went_wrong() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    env.scribe_ok(&["exec", SCHEMA]);
    let within = Duration::from_secs(30);
    let nul =
        r#"{"statements":[{"sql":"INSERT INTO t(tag, i) VALUES ('n', 1)\u0000; DROP TABLE t"}]}"#;
    let a = http_raw(&env, &post("/v1/write", nul), within);
    assert!(status_line(&a).contains("403"), "{a}");
    assert!(a.contains("NUL"), "{a}");
    assert_eq!(env.count("SELECT count(*) FROM t"), 0);
    let a = http_raw(&env, &post("/v1/write", r#"{"statements":[]}"#), within);
    assert!(status_line(&a).contains("400"), "{a}");
    let big = r#"{"statements":[{"sql":"INSERT INTO t(tag, i) VALUES ('b', ?)","params":[99999999999999999999]}]}"#;
    let a = http_raw(&env, &post("/v1/write", big), within);
    assert!(
        status_line(&a).contains("400") && a.contains("64-bit"),
        "{a}"
    );
    let chunked = b"POST /v1/write HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
                    Connection: close\r\n\r\nzz\r\n";
    let a = http_raw(&env, chunked, within);
    assert!(
        status_line(&a).contains("400"),
        "a malformed chunked body is not a size limit: {a}"
    );
    let started = Instant::now();
    let a = http_raw(&env, &post("/v1/wait", r#"{"seq":1000000}"#), within);
    assert!(status_line(&a).contains("504"), "{a}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn no_panic_on_a_huge_timeout_or_a_closed_pipe() {
    let env = Env::new();
    env.scribe_ok(&["--timeout", "100000000s", "exec", SCHEMA]);
    // More output than a pipe holds, so the writer meets the closed end.
    env.scribe_ok(&[
        "exec",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000) \
         INSERT INTO t(tag, i) SELECT printf('%0200d', x), x FROM c",
    ]);
    let script = format!(
        "{} query 'SELECT * FROM t' | head -1; {} --json query 'SELECT * FROM t' | head -c 10; \
         {} query --csv 'SELECT * FROM t' | head -1",
        crate::harness::other_build(SCRIBE),
        crate::harness::other_build(SCRIBE),
        crate::harness::other_build(SCRIBE)
    );
    let mut c = env.command("sh");
    c.args(["-c", &script]);
    let out = crate::harness::run(c, Duration::from_secs(60));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}
