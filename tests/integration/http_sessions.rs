//! Write sessions over HTTP: a session lives on its keep-alive connection.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::harness::{stderr, Env, LONG_LEASE, SCHEMA, SCRIBE};

/// One keep-alive HTTP connection to the arbiter.
struct Conn {
    rt: tokio::runtime::Runtime,
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    fn open(env: &Env) -> Conn {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let sender = rt.block_on(async {
            let stream = tokio::net::UnixStream::connect(env.paths().http_socket)
                .await
                .unwrap();
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            sender
        });
        Conn { rt, sender }
    }

    fn post(&mut self, path: &str, body: &Value) -> (u16, Value) {
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header("host", "scribe")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let sender = &mut self.sender;
        self.rt.block_on(async {
            let res = sender.send_request(req).await.unwrap();
            let status = res.status().as_u16();
            let bytes = res.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice(&bytes).unwrap())
        })
    }

    fn exec(&mut self, session: &Value, sql: &str) -> (u16, Value) {
        self.post(
            "/v1/exec",
            &json!({"session": session, "statement": {"sql": sql}}),
        )
    }
}

/// An arbiter with long leases, `SCHEMA`'s table, and a keep-alive
/// connection that has begun a session (its answer).
fn begun() -> (Env, Conn, Value) {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    let mut c = Conn::open(&env);
    let (s, began) = c.post("/v1/begin", &json!({}));
    assert_eq!(s, 200, "{began}");
    (env, c, began)
}

#[test]
fn a_session_sees_its_own_writes_and_commits_once_by_key() {
    let (env, mut c, began) = begun();
    let id = &began["session"];
    let (s, ins) = c.exec(id, "INSERT INTO t(tag, i) VALUES ('h', 1) RETURNING id");
    assert_eq!((s, &ins["rows"][0]["id"]), (200, &json!(1)), "{ins}");
    let (_, seen) = c.exec(id, "SELECT count(*) AS n FROM t");
    assert_eq!(seen["rows"][0]["n"], 1, "the session sees its own write");
    assert_eq!(env.count("SELECT count(*) FROM t"), 0, "readers do not yet");
    let (s, bad) = c.exec(id, "INSERT INTO t(tag, i) VALUES ('h', 1)");
    assert_eq!((s, bad["category"].as_str()), (422, Some("sql")), "{bad}");
    let (s, receipt) = c.post("/v1/commit", &json!({"session": id, "key": "hk"}));
    assert_eq!(s, 200, "{receipt}");
    assert_eq!(receipt["replayed"], false);
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);

    // The same commit asked again on another connection: the stored receipt.
    let mut other = Conn::open(&env);
    let (s, again) = other.post("/v1/commit", &json!({"session": id, "key": "hk"}));
    assert_eq!((s, &again["seq"]), (200, &receipt["seq"]), "{again}");
    assert_eq!(again["replayed"], true);
    // Without a key, another connection's session is not there to commit.
    let (s, none) = other.post("/v1/commit", &json!({"session": id}));
    assert_eq!(
        (s, none["category"].as_str()),
        (400, Some("protocol")),
        "{none}"
    );
    assert_eq!(env.count("SELECT count(*) FROM t"), 1, "applied once");
}

#[test]
fn closing_the_connection_rolls_its_session_back_at_once() {
    let mut env = Env::new();
    // A long lease: only the closed connection can end the session soon.
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    let mut c = Conn::open(&env);
    let (_, began) = c.post("/v1/begin", &json!({"idle_ms": 60000}));
    let id = began["session"].clone();
    let (s, _) = c.exec(&id, "INSERT INTO t(tag, i) VALUES ('gone', 1)");
    assert_eq!(s, 200);
    let mut behind = env.command(SCRIBE);
    behind.args(["exec", "INSERT INTO t(tag, i) VALUES ('behind', 1)"]);
    let behind = env.spawn(behind);
    env.wait_status(|s| {
        s["queue_depth"].as_u64() == Some(1) && s["session"]["statements"].as_u64() == Some(1)
    });
    let shown = env.scribe_ok(&["status"]);
    assert!(
        shown.contains("1 statement so far; 1 write waiting behind it"),
        "{shown}"
    );
    let closed = Instant::now();
    drop(c);
    let out = env.wait(behind, Duration::from_secs(30));
    let after = closed.elapsed();
    // The wait's 30 s deadline, well inside the 300 s lease, is the check
    // that the close (not a lapse) ended the session.
    println!("the queued write committed {after:?} after the connection closed");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'gone'"), 0);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'behind'"), 1);
}

/// A caller that hangs up while its session's statement runs: the
/// statement stops and the session ends at once, as on the RPC socket.
/// Before, hyper saw the close only when it wrote the answer, so the
/// statement held the writer until the session's lease ended it (300 s
/// here). A half close (`nc -N`) is not a hang-up: http.rs tests it is
/// still answered.
#[test]
fn a_statement_stops_when_its_http_caller_hangs_up() {
    const FOREVER: &str = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r)";
    let mut env = Env::new();
    let log = env.dir.path().join("scribed.log");
    env.start_arbiter_logged(&LONG_LEASE, &log);
    env.scribe_ok(&["exec", SCHEMA]);
    let mut c = Conn::open(&env);
    let (_, began) = c.post("/v1/begin", &json!({}));
    let body = json!({"session": began["session"], "statement": {"sql": format!("{FOREVER} SELECT count(*) FROM r")}});
    let req = Request::builder()
        .method("POST")
        .uri("/v1/exec")
        .header("host", "scribe")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    // Sent, and never read: the answer would come only when it ends. The
    // runtime runs the connection's task while it waits for the log.
    let _pending = c.rt.spawn(c.sender.send_request(req));
    let deadline = Instant::now() + Duration::from_secs(60);
    c.rt.block_on(async {
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("outlasted the socket thread's slice")
        {
            assert!(Instant::now() < deadline, "the statement never ran long");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    // The runtime ends the connection's task: the socket closes.
    drop(c);
    // The session ends at once (not at its 300 s lease).
    env.wait_status(|s| s["session"].is_null());
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('after', 1)"]);
    assert_eq!(env.count("SELECT count(*) FROM t"), 1);
}

#[test]
fn an_idle_http_session_lapses_with_410() {
    let mut env = Env::new();
    env.start_arbiter(&["--session-idle", "2s", "--session-total", "300s"]);
    env.scribe_ok(&["exec", SCHEMA]);
    let mut c = Conn::open(&env);
    let (_, began) = c.post("/v1/begin", &json!({}));
    let id = began["session"].clone();
    let (s, ins) = c.exec(&id, "INSERT INTO t(tag, i) VALUES ('idle', 1)");
    assert_eq!(s, 200, "{ins}");
    env.wait_status(|s| s["session"].is_null());
    let (s, e) = c.exec(&id, "SELECT 1");
    assert_eq!((s, e["category"].as_str()), (410, Some("expired")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("idle"), "{e}");
    assert_eq!(env.count("SELECT count(*) FROM t"), 0);
}

#[test]
fn exec_many_runs_its_statements_in_one_call_and_stops_at_the_first_failure() {
    let mut env = Env::new();
    env.start_arbiter(&LONG_LEASE);
    env.scribe_ok(&["exec", SCHEMA]);
    let mut c = Conn::open(&env);
    let (_, began) = c.post("/v1/begin", &json!({}));
    let id = &began["session"];
    let insert = |tag: &str, i: i64| json!({"sql": "INSERT INTO t(tag, i) VALUES (?, ?)", "params": [tag, i]});
    let (s, all) = c.post(
        "/v1/exec_many",
        &json!({"session": id, "statements": [insert("a", 1), insert("b", 2), insert("c", 3)]}),
    );
    assert_eq!(s, 200, "{all}");
    assert_eq!(
        (&all["rows_affected"], &all["last_insert_rowid"]),
        (&json!(3), &json!(3)),
        "{all}"
    );
    // The second repeats a tag of the first call: the first stays, the
    // third never runs, the session goes on.
    let (s, bad) = c.post(
        "/v1/exec_many",
        &json!({"session": id, "statements": [insert("d", 4), insert("a", 1), insert("e", 6)]}),
    );
    assert_eq!((s, bad["category"].as_str()), (422, Some("sql")), "{bad}");
    // Named by its place in this call, as a batch's statements are (it
    // said 4: its place in the session).
    assert_eq!(bad["statement"], json!(1), "{bad}");
    // Its message says what stands: "nothing was written" invited running
    // the first call again, and the commit would have applied it twice.
    let message = bad["message"].as_str().unwrap();
    assert!(!message.contains("nothing was written"), "{message}");
    assert!(
        message.contains("what ran before it in the transaction stands"),
        "{message}"
    );
    // A refused statement undoes only itself too.
    let (s, refused) = c.exec(id, "BEGIN");
    assert_eq!(
        (s, refused["category"].as_str()),
        (403, Some("refused")),
        "{refused}"
    );
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.ends_with("and the transaction goes on"),
        "{message}"
    );
    let (s, receipt) = c.post("/v1/commit", &json!({"session": id}));
    assert_eq!(s, 200, "{receipt}");
    assert_eq!(env.count("SELECT count(*) FROM t"), 4, "a, b, c and d");
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'e'"), 0);
}

/// A second begin on a keep-alive connection with a session open is
/// refused at once: the connection runs one request at a time, so it
/// could only wait for the first session's lease to lapse, which rolled
/// that session back in silence (helper 87: answered 200 after the lease,
/// the first session gone). Once the first ends, a begin goes.
#[test]
fn a_second_begin_on_a_connection_with_a_session_open_is_refused() {
    let (env, mut c, began) = begun();
    let id = began["session"].clone();
    let (s, second) = c.post("/v1/begin", &json!({}));
    assert_eq!(
        (s, second["category"].as_str()),
        (403, Some("refused")),
        "{second}"
    );
    assert!(
        second["message"]
            .as_str()
            .unwrap()
            .contains("already has session"),
        "{second}"
    );
    // The first goes on, and commits.
    let (s, ins) = c.exec(&id, "INSERT INTO t(tag, i) VALUES ('first', 1)");
    assert_eq!(s, 200, "{ins}");
    let (s, receipt) = c.post("/v1/commit", &json!({"session": id}));
    assert_eq!(s, 200, "{receipt}");
    let (s, again) = c.post("/v1/begin", &json!({}));
    assert_eq!(s, 200, "{again}");
    let (s, _) = c.post("/v1/rollback", &json!({"session": again["session"]}));
    assert_eq!(s, 200);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'first'"), 1);
}
