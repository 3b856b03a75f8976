//! Hostile and careless input never hurts other callers: each bad thing is
//! sent while real writer processes keep writing, and the test checks that
//! (a) the bad caller gets a clear, categorized error, (b) the arbiter keeps
//! running, (c) the others' writes all succeed, (d) nothing acknowledged is
//! lost.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use scribe_client::{Connection, Error, Options};
use scribe_protocol::{Batch, Request, Statement, Value};
use scribe_tests::raw::Raw;

use crate::harness::{stderr, stdout, Env, SCHEMA, WORKER};

/// Background writers that must not notice anything.
struct Bystanders {
    loaders: Vec<(String, usize, PathBuf)>,
}

impl Bystanders {
    fn start(env: &mut Env, rows: u64) -> Bystanders {
        let loaders = (0..2)
            .map(|w| {
                let tag = format!("by{w}");
                let (i, log) = env.loader(&tag, rows);
                (tag, i, log)
            })
            .collect();
        Bystanders { loaders }
    }

    /// (b), (c), (d): the arbiter answers, every bystander write succeeded
    /// and is in the file.
    fn check(self, env: &mut Env) {
        env.scribe_ok(&["status"]);
        for (tag, i, log) in self.loaders {
            let out = env.wait(i, Duration::from_secs(120));
            assert!(out.status.success(), "{}", stderr(&out));
            assert!(
                stdout(&out).contains("errors=0"),
                "bystander {tag} was hurt: {}",
                stdout(&out)
            );
            assert!(env.assert_acked_present(&tag, &log) > 0);
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// True once the server has closed `s` (read sees EOF or a reset).
fn closed_within(s: &mut UnixStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn refusal_rules_name_the_statement_and_the_rule() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    env.scribe_ok(&["exec", SCHEMA]);
    let bystanders = Bystanders::start(&mut env, 150);
    let rules = [
        ("transaction", "BEGIN"),
        ("savepoint", "SAVEPOINT mine"),
        ("attach", "ATTACH '/tmp/other.db' AS other"),
        ("pragma_journal_mode", "PRAGMA journal_mode=DELETE"),
        ("pragma_wal_checkpoint", "PRAGMA wal_checkpoint(TRUNCATE)"),
        ("pragma_foreign_keys", "PRAGMA foreign_keys=OFF"),
        ("load_extension", "SELECT load_extension('/tmp/evil.so')"),
        ("vacuum_into", "VACUUM INTO '/tmp/copy.db'"),
        ("reserved_table", "DELETE FROM _scribe_meta"),
        ("own_statement", "COMMIT"),
    ];
    for (name, sql) in rules {
        let out = env.scribe(&["exec", sql]);
        assert_eq!(out.status.code(), Some(16), "{sql}: {}", stderr(&out));
        insta::with_settings!({ prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(format!("refused_{name}"), stderr(&out).trim_end());
        });
    }
    // Ordinary DDL, FTS5 included, is allowed; so are schema pragmas.
    let ddl = env.dir.path().join("ddl.sql");
    std::fs::write(
        &ddl,
        "CREATE TABLE u(a INTEGER PRIMARY KEY, b TEXT);
         CREATE INDEX ub ON u(b);
         CREATE VIEW v AS SELECT * FROM u;
         CREATE TRIGGER tu AFTER INSERT ON u BEGIN UPDATE u SET b = upper(new.b) WHERE a = new.a; END;
         CREATE VIRTUAL TABLE docs USING fts5(body);
         INSERT INTO u(b) VALUES ('x');
         INSERT INTO docs(body) VALUES ('hello world');
         ALTER TABLE u ADD COLUMN c;
         PRAGMA user_version = 7;
         DROP VIEW v;",
    )
    .unwrap();
    env.scribe_ok(&["exec", "--file", ddl.to_str().unwrap()]);
    env.scribe_ok(&["exec", "PRAGMA table_info(u)"]);
    assert_eq!(
        env.count("SELECT count(*) FROM docs WHERE docs MATCH 'hello'"),
        1
    );
    assert_eq!(env.count("PRAGMA user_version"), 7);
    assert!(env.count("SELECT seq FROM _scribe_seq") > 0);
    bystanders.check(&mut env);
}

#[test]
fn operator_pragmas_apply_foreign_keys_come_from_the_config_file() {
    let mut env = Env::new();
    std::fs::write(
        &env.paths().config,
        "# settings of the writer connection\npragma = foreign_keys=on\n\
         # quoted as in a TOML file\nsynchronous = \"normal\"\n",
    )
    .unwrap();
    env.start_arbiter(&["--pragma", "recursive_triggers=on"]);
    let schema = env.dir.path().join("fk.sql");
    std::fs::write(
        &schema,
        "CREATE TABLE parent(id INTEGER PRIMARY KEY);
         CREATE TABLE child(id INTEGER PRIMARY KEY, parent INTEGER NOT NULL REFERENCES parent(id));",
    )
    .unwrap();
    env.scribe_ok(&["exec", "--file", schema.to_str().unwrap()]);
    env.scribe_ok(&["exec", "INSERT INTO parent(id) VALUES (1)"]);
    env.scribe_ok(&["exec", "INSERT INTO child(parent) VALUES (1)"]);
    let out = env.scribe(&["--json", "exec", "INSERT INTO child(parent) VALUES (99)"]);
    assert_eq!(out.status.code(), Some(15));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        err["error"]["sqlite_code"], 787,
        "SQLITE_CONSTRAINT_FOREIGNKEY: {err}"
    );
    assert_eq!(env.count("SELECT count(*) FROM child"), 1);
    let status: serde_json::Value =
        serde_json::from_str(&env.scribe_ok(&["--json", "status"])).unwrap();
    assert_eq!(
        status["settings"],
        serde_json::json!(["foreign_keys=on", "recursive_triggers=on"])
    );
    assert_eq!(status["synchronous"], "normal", "{status}");
}

/// Foreign keys are off unless the operator turns them on, as SQLite has
/// them (the bundled build compiles them on): a `.dump` with children
/// before parents restores through the shell, as it does in sqlite3.
#[test]
fn foreign_keys_are_off_unless_the_operator_turns_them_on() {
    let env = Env::new();
    let dump = "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n\
                CREATE TABLE child(id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent(id));\n\
                INSERT INTO child VALUES(1,1);\n\
                CREATE TABLE parent(id INTEGER PRIMARY KEY);\n\
                INSERT INTO parent VALUES(1);\nCOMMIT;\n";
    let (code, out) = crate::shell::shell(&env, dump);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(env.count("SELECT count(*) FROM child"), 1);
    let said = env.scribe_ok(&["--json", "exec", "PRAGMA foreign_keys"]);
    assert!(said.contains(r#""rows":[{"foreign_keys":0}]"#), "{said}");
    env.scribe_ok(&["exec", "INSERT INTO child VALUES (2, 99)"]);
    assert_eq!(env.count("SELECT count(*) FROM child"), 2);
}

#[test]
fn a_runaway_statement_is_interrupted_and_only_its_batch_fails() {
    let mut env = Env::new();
    env.start_arbiter(&["--batch-budget", "300ms"]);
    env.scribe_ok(&["exec", SCHEMA]);
    let rt = rt();
    let c = rt
        .block_on(Connection::connect(&env.paths(), &Options::default()))
        .unwrap();
    let forever = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) ";
    for (round, runaway) in [
        format!("{forever} SELECT count(*) FROM r"),
        format!("INSERT INTO t(tag, i) {forever} SELECT 'runaway', n FROM r"),
    ]
    .into_iter()
    .enumerate()
    {
        let started = Instant::now();
        let (bad, good) = rt.block_on(async {
            let bad = c.write(Batch::one(Statement::new(runaway.clone())));
            let good = futures::future::join_all((0..20).map(|i| {
                c.write(Batch::one(
                    Statement::new("INSERT INTO t(tag, i) VALUES ('ok', ?1)")
                        .params(vec![Value::Integer(round as i64 * 100 + i)]),
                ))
            }));
            tokio::join!(bad, good)
        });
        match bad {
            Err(Error::Refused { reason, .. }) => {
                assert!(reason.contains("time budget"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        for g in good {
            g.unwrap();
        }
        // A bound that catches a hang, not a measure of speed.
        assert!(started.elapsed() < Duration::from_secs(60));
    }
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'runaway'"), 0);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'ok'"), 40);
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('after', 1)"]);
}

#[test]
fn oversized_requests_are_refused_naming_the_limit() {
    let mut env = Env::new();
    env.start_arbiter(&[
        "--max-statements",
        "5",
        "--max-sql-bytes",
        "200",
        "--max-batch-bytes",
        "2000",
        "--max-params",
        "3",
    ]);
    env.scribe_ok(&["exec", SCHEMA]);
    let bystanders = Bystanders::start(&mut env, 150);
    let insert = || Statement::new("INSERT INTO t(tag, i) VALUES ('big', 1)");
    let cases: Vec<(Batch, &str)> = vec![
        (Batch::new(vec![insert(); 6]), "--max-statements"),
        (
            Batch::one(Statement::new(format!("SELECT '{}'", "x".repeat(300)))),
            "--max-sql-bytes",
        ),
        (
            Batch::one(Statement::new("SELECT ?1, ?2, ?3, ?4").params(vec![
                1.into(),
                2.into(),
                3.into(),
                4.into(),
            ])),
            "--max-params",
        ),
        (
            Batch::one(Statement::new("SELECT ?1").params(vec![Value::Blob(vec![0; 5000])])),
            "--max-batch-bytes",
        ),
    ];
    let rt = rt();
    rt.block_on(async {
        // The client refuses before sending…
        let c = Connection::connect(&env.paths(), &Options::default())
            .await
            .unwrap();
        for (batch, limit) in &cases {
            match c.write(batch.clone()).await {
                Err(Error::Refused { reason, .. }) => assert!(reason.contains(limit), "{reason}"),
                other => panic!("client, {limit}: {other:?}"),
            }
        }
    });
    // …and the arbiter refuses too when a client does not.
    let mut raw = Raw::greeted(&env.paths().socket);
    for (batch, limit) in cases {
        match raw.call(&Request::Write(batch)) {
            Err(Error::Refused { reason, .. }) => assert!(reason.contains(limit), "{reason}"),
            other => panic!("arbiter, {limit}: {other:?}"),
        }
    }
    assert_eq!(env.count("SELECT count(*) FROM t WHERE tag = 'big'"), 0);
    bystanders.check(&mut env);
}

#[test]
fn malformed_traffic_costs_only_its_own_connection() {
    let mut env = Env::new();
    let pid = env.start_arbiter(&["--hello-timeout", "500ms"]);
    env.scribe_ok(&["exec", SCHEMA]);
    let rss_before = rss_kib(pid);
    let bystanders = Bystanders::start(&mut env, 300);
    let socket = env.paths().socket;
    let connect = || UnixStream::connect(&socket).unwrap();

    // Garbage instead of the preamble, a frame claiming 4 GiB: answered
    // (the reason is told) and closed at once.
    let preamble = scribe_protocol::frame::preamble(scribe_protocol::frame::CODEC_BINCODE);
    for bytes in [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4],
        [&preamble[..], &[0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0]].concat(),
    ] {
        let mut s = connect();
        s.write_all(&bytes).unwrap();
        assert!(closed_within(&mut s, Duration::from_secs(5)), "{bytes:?}");
    }
    // A body that does not decode is answered `Protocol` under its id; the
    // connection is not greeted, so it closes at the hello timeout.
    let mut junk = Raw::connect(&socket);
    let mut frame = Vec::new();
    scribe_protocol::frame::encode_raw(5, &[0xfe; 9], &mut frame);
    junk.stream.write_all(&frame).unwrap();
    match junk.recv() {
        Some((5, Err(Error::Protocol { .. }))) => {}
        other => panic!("{other:?}"),
    }
    assert!(closed_within(&mut junk.stream, Duration::from_secs(5)));
    // A truncated frame, and a client that sends nothing: closed after the
    // hello timeout.
    let mut truncated = connect();
    truncated
        .write_all(&[&preamble[..], &[100, 0, 0, 0, 1, 0, 0, 0, 1, 2, 3]].concat())
        .unwrap();
    let mut silent = connect();
    assert!(closed_within(&mut truncated, Duration::from_secs(5)));
    assert!(closed_within(&mut silent, Duration::from_secs(5)));

    // 500 idle connections at once: the others carry on meanwhile.
    let idle: Vec<UnixStream> = (0..500).map(|_| connect()).collect();
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('among-idle', 1)"]);
    let rss_during = rss_kib(pid);
    for mut s in idle {
        assert!(closed_within(&mut s, Duration::from_secs(10)));
    }
    bystanders.check(&mut env);
    let rss_after = rss_kib(pid);
    eprintln!(
        "arbiter RSS: before {rss_before} KiB, 500 idle {rss_during} KiB, after {rss_after} KiB"
    );
    assert!(
        rss_during < 64 * 1024,
        "RSS {rss_during} KiB with 500 idle connections"
    );
}

#[test]
fn the_connection_cap_closes_extra_connections_at_accept() {
    let mut env = Env::new();
    let log = env.dir.path().join("arbiter.log");
    env.start_arbiter_logged(&["--max-connections", "4"], &log);
    let socket = env.paths().socket;
    // Let the readiness probe's connection close first.
    std::thread::sleep(Duration::from_millis(200));
    let mut held: Vec<UnixStream> = (0..4)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut extra = UnixStream::connect(&socket).unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(5)),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(!closed_within(&mut held[0], Duration::from_millis(100)));
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = env.scribe(&["status"]);
        if out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "{}", stderr(&out));
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sixty_four_callers_flooding_a_small_queue_all_get_through() {
    let mut env = Env::new();
    let pid = env.start_arbiter(&["--queue-capacity", "4"]);
    env.scribe_ok(&["exec", SCHEMA]);
    // 8 processes with 8 callers each, every caller retrying on Overloaded.
    let writers: Vec<usize> = (0..8)
        .map(|w| {
            let mut c = env.command(WORKER);
            c.args(["write", &format!("f{w}"), "200", "8"]);
            env.spawn(c)
        })
        .collect();
    let mut peak = 0;
    let mut done = Vec::new();
    for w in writers {
        peak = peak.max(rss_kib(pid));
        let out = env.wait(w, Duration::from_secs(120));
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        done.push(stdout(&out));
    }
    assert_eq!(env.count("SELECT count(*) FROM t"), 1600);
    let status: serde_json::Value =
        serde_json::from_str(&env.scribe_ok(&["--json", "status"])).unwrap();
    let overloaded = status["overloaded"].as_u64().unwrap();
    eprintln!("overloaded refusals: {overloaded}, peak RSS {peak} KiB");
    assert!(overloaded > 0, "the queue never filled: {done:?}");
    assert!(peak < 64 * 1024, "RSS {peak} KiB");
}
