//! The HTTP listener: each error category by status code and body.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;

use crate::harness::{Env, LONG_LEASE, SCHEMA, SCRIBE};

/// One request over the HTTP socket: status, Retry-After, JSON body.
pub(crate) fn call(
    env: &Env,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Option<String>, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let stream = tokio::net::UnixStream::connect(env.paths().http_socket)
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "scribe")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let res = sender.send_request(req).await.unwrap();
        let status = res.status().as_u16();
        let retry = res
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, retry, String::from_utf8_lossy(&bytes).into_owned())
    })
}

fn write(env: &Env, body: &str) -> (u16, Option<String>, String) {
    call(env, "POST", "/v1/write", body)
}

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({
            filters => vec![
                (r#""retry_after_ms":\d+"#, r#""retry_after_ms":"[N]""#),
                (r"retry after \d+ ms", "retry after [N] ms"),
                (r#"Some\("\d+"\)"#, "Some([N])"),
            ],
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!($name, $value);
        });
    };
}

fn shown((status, retry, body): (u16, Option<String>, String)) -> String {
    format!("{status} retry-after={retry:?}\n{body}")
}

#[test]
fn writes_and_reads_their_receipt() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    let (s, _, _) = write(&env, &format!(r#"{{"statements":[{{"sql":"{SCHEMA}"}}]}}"#));
    assert_eq!(s, 200);
    let body = r#"{"statements":[{"sql":"INSERT INTO t(tag, i) VALUES (:tag, :i) RETURNING id, tag","params":{":tag":"h","i":1}}],"key":"h1"}"#;
    let (s, _, first) = write(&env, body);
    assert_eq!(s, 200, "{first}");
    snapshot!("http_receipt", first.clone());
    let (_, _, again) = write(&env, body);
    assert_eq!(
        again,
        first.replace(r#""replayed":false"#, r#""replayed":true"#)
    );
    let (s, _, waited) = call(&env, "POST", "/v1/wait", r#"{"seq":2,"timeout_ms":1000}"#);
    assert_eq!((s, waited.as_str()), (200, r#"{"seq":2}"#));
    // A JSON object has no order: the retry of a keyed write whose body
    // was built again with its parameters in another order is the same
    // write (it was refused as a key used for a different batch).
    let reordered = r#"{"statements":[{"sql":"INSERT INTO t(tag, i) VALUES (:tag, :i) RETURNING id, tag","params":{"i":1,":tag":"h"}}],"key":"h1"}"#;
    let (s, _, again) = write(&env, reordered);
    assert_eq!(s, 200, "{again}");
    assert_eq!(
        again,
        first.replace(r#""replayed":false"#, r#""replayed":true"#)
    );
    let other = r#"{"statements":[{"sql":"INSERT INTO t(tag, i) VALUES (:tag, :i) RETURNING id, tag","params":{"i":2,":tag":"h"}}],"key":"h1"}"#;
    assert_eq!(write(&env, other).0, 409);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'h'"), 1);
}

#[test]
fn every_category_the_arbiter_can_answer_has_its_status_and_body() {
    let mut env = Env::new();
    env.start_arbiter(
        &[
            &["--max-statements", "2", "--queue-capacity", "1"][..],
            &LONG_LEASE,
        ]
        .concat(),
    );
    env.scribe_ok(&["exec", SCHEMA]);
    let cases = [
        (
            "http_protocol",
            write(&env, r#"{"statements":[{"sql":1}]}"#),
            400,
        ),
        (
            "http_refused",
            write(&env, r#"{"statements":[{"sql":"BEGIN"}]}"#),
            403,
        ),
        (
            "http_too_large",
            write(
                &env,
                r#"{"statements":[{"sql":"SELECT 1"},{"sql":"SELECT 2"},{"sql":"SELECT 3"}]}"#,
            ),
            413,
        ),
        (
            "http_conflict",
            write(
                &env,
                r#"{"statements":[{"sql":"UPDATE t SET i = 1 WHERE tag = 'none'","expect_rows":1}]}"#,
            ),
            409,
        ),
        (
            "http_sql",
            write(
                &env,
                r#"{"statements":[{"sql":"INSERT INTO nope VALUES (1)"}]}"#,
            ),
            422,
        ),
        (
            "http_timeout",
            call(&env, "POST", "/v1/wait", r#"{"seq":999,"timeout_ms":50}"#),
            504,
        ),
    ];
    for (name, answer, status) in cases {
        assert_eq!(answer.0, status, "{name}: {}", answer.2);
        snapshot!(name, shown(answer));
    }

    // Overloaded: a held session occupies the writer, one more write
    // fills the queue.
    let busy = env.hold_writer("busy");
    let mut queued = env.command(SCRIBE);
    queued.args(["exec", "INSERT INTO t(tag, i) VALUES ('q', 1)"]);
    let queued = env.spawn(queued);
    env.wait_status(|s| s["queue_depth"].as_u64() == Some(1));
    let over = write(
        &env,
        r#"{"statements":[{"sql":"INSERT INTO t(tag, i) VALUES ('o', 1)"}]}"#,
    );
    assert_eq!(over.0, 429, "{}", over.2);
    assert!(over.1.is_some(), "Retry-After");
    snapshot!("http_overloaded", shown(over));
    assert!(busy.release().status.success());
    assert!(env.wait(queued, Duration::from_secs(30)).status.success());

    // Shutting down: a stop drains behind a held session.
    let busy = env.hold_writer("busy2");
    let mut stop = env.command(SCRIBE);
    stop.args(["--timeout", "120s", "stop", "--grace", "0s"]);
    let stop = env.spawn(stop);
    env.wait_status(|s| s["stopping"].as_bool() == Some(true));
    let down = write(&env, r#"{"statements":[{"sql":"SELECT 1"}]}"#);
    assert_eq!(down.0, 503, "{}", down.2);
    snapshot!("http_shutting_down", shown(down));
    assert!(busy.release().status.success());
    assert!(env.wait(stop, Duration::from_secs(30)).status.success());
}

/// A path the socket does not serve is 404 naming those it does; a
/// served one with another method is 405; both with a JSON body.
#[test]
fn unknown_paths_are_404_and_wrong_methods_405() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    for (method, path) in [
        ("GET", "/v1/nope"),
        ("POST", "/v1/nope"),
        ("POST", "/v1/stop"),
        ("GET", "/elsewhere"),
    ] {
        let (status, _, body) = call(&env, method, path, "{}");
        assert_eq!(status, 404, "{method} {path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["category"], "protocol", "{body}");
        assert!(body.contains("POST /v1/write"), "{body}");
    }
    // Every served route, the stateless ones too (their 405 had no body).
    for (method, path, want) in [
        ("GET", "/v1/commit", "use POST"),
        ("GET", "/v1/write", "use POST"),
        ("PUT", "/v1/wait", "use POST"),
        ("POST", "/v1/status", "use GET"),
    ] {
        let (status, _, body) = call(&env, method, path, "{}");
        assert_eq!(status, 405, "{method} {path}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(v["category"], "protocol", "{method} {path}: {body}");
        assert!(body.contains(want), "{method} {path}: {body}");
    }
}

#[test]
fn a_client_that_shuts_its_side_after_the_request_is_still_answered() {
    use std::io::{Read, Write};
    let mut env = Env::new();
    env.start_arbiter(&[]);
    assert_eq!(
        write(&env, r#"{"statements":[{"sql":"CREATE TABLE h(v)"}]}"#).0,
        200
    );
    let body = r#"{"statements":[{"sql":"INSERT INTO h VALUES ('half-closed')"}]}"#;
    let mut s = std::os::unix::net::UnixStream::connect(env.paths().http_socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST /v1/write HTTP/1.1\r\nhost: scribe\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // As `nc -N` and socat do once their input ends.
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(answer.contains(r#""rows_affected":1"#), "{answer}");
    assert_eq!(env.count("SELECT count(*) FROM h"), 1);
}

#[test]
fn an_empty_idempotency_key_is_refused_and_nothing_is_written() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    assert_eq!(
        write(&env, r#"{"statements":[{"sql":"CREATE TABLE k(v)"}]}"#).0,
        200
    );
    for _ in 0..2 {
        let (s, _, body) = write(
            &env,
            r#"{"statements":[{"sql":"INSERT INTO k VALUES (1)"}],"key":""}"#,
        );
        assert_eq!(s, 403, "{body}");
        assert!(body.contains("the idempotency key is empty"), "{body}");
    }
    // The CLI with an unset variable as its key.
    let out = env.scribe(&["exec", "--key", "", "INSERT INTO k VALUES (2)"]);
    assert_eq!(out.status.code(), Some(16), "{out:?}");
    assert_eq!(env.count("SELECT count(*) FROM k"), 0);
}

/// A kept-alive connection's answers say how long it may stay idle, a
/// second short of the arbiter's limit (`--hello-timeout`), so that a
/// client's agent retires it before the arbiter closes it: Node's reused
/// one at 10 s and a write failed with EPIPE, outcome unknown (helper 101).
#[test]
fn kept_alive_answers_say_how_long_the_connection_may_idle() {
    use std::io::{Read, Write};
    let mut env = Env::new();
    env.start_arbiter(&["--hello-timeout", "4s"]);
    let mut s = std::os::unix::net::UnixStream::connect(env.paths().http_socket).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "closed before the head ended"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("keep-alive: timeout=3\r\n"), "{head}");
}
