//! A client process for the multi-process tests.
//!
//! - `test-worker write TAG ROWS [INFLIGHT]`: inserts ROWS rows
//!   `(tag, i)` into table `t` through the client library, INFLIGHT at a
//!   time on one connection; prints `ok=N errors=E` and exits 1 on any
//!   error.
//! - `test-worker mixed TAG ROWS INFLIGHT`: batches of which every third
//!   fails at its second statement, the others commit (see `mixed.rs`).
//! - `test-worker load TAG ROWS LOGFILE`: inserts rows `(tag, i)` one at
//!   a time for i in 0..ROWS, surviving errors: after one it reconnects
//!   (auto-starting if allowed) and moves on. Appends every acknowledged i
//!   to LOGFILE; prints `ok=N errors=E categories=a,b`. Never retries the
//!   same i, so the log holds exactly what was acknowledged.
//! - `test-worker torture TAG LOGFILE STOPFILE`: until STOPFILE exists,
//!   writes batches inserting one row into `a` and one into `b` with the
//!   same id, through the retrying client; appends each acknowledged id
//!   to LOGFILE; prints `acked= failed= retries= replays= reconnects=`.
//! - `test-worker read STOPFILE`: queries `t` through the reader in a loop
//!   until STOPFILE exists; checks the count never goes backwards; prints
//!   `queries=N errors=E`.
//! - `test-worker hello VERSION`: handshake with the given protocol
//!   version; prints the outcome.
//! - `test-worker claim-session WORKER LOGFILE`, `hold-session TAG
//!   PAUSE_MS|stdin`: write sessions (see `sessions.rs`).
//! - `test-worker migrate DIR TAG`: migrations, then a write (see
//!   `migrate.rs`).

mod migrate;
mod mixed;
mod sessions;

use std::path::Path;
use std::process::ExitCode;

use scribe_client::{Client, Options};
use scribe_protocol::{Batch, Paths, Statement, Value};
use scribe_reader::Reader;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let paths = match Paths::resolve(None, None) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args.first().map(String::as_str) {
        Some("write") => {
            let tag = args.get(1).cloned().unwrap_or_default();
            let rows: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
            let inflight: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
            rt.block_on(write(&paths, &tag, rows, inflight.max(1)))
        }
        Some("mixed") => {
            let tag = args.get(1).cloned().unwrap_or_default();
            let rows: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
            let inflight: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1);
            rt.block_on(mixed::mixed(&paths, &tag, rows, inflight.max(1)))
        }
        Some("load") => {
            let tag = args.get(1).cloned().unwrap_or_default();
            let rows: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
            let log = args.get(3).cloned().unwrap_or_default();
            rt.block_on(load(&paths, &tag, rows, Path::new(&log)))
        }
        Some("torture") => {
            let tag = args.get(1).cloned().unwrap_or_default();
            let log = args.get(2).cloned().unwrap_or_default();
            let stop = args.get(3).cloned().unwrap_or_default();
            rt.block_on(torture(&paths, &tag, Path::new(&log), Path::new(&stop)))
        }
        Some("migrate") => {
            let dir = args.get(1).cloned().unwrap_or_default();
            let tag = args.get(2).cloned().unwrap_or_default();
            rt.block_on(migrate::migrate_and_write(&paths, Path::new(&dir), &tag))
        }
        Some("read") => read(&paths, Path::new(args.get(1).map_or("", String::as_str))),
        Some("claim-session") => {
            let worker = args.get(1).cloned().unwrap_or_default();
            let log = args.get(2).cloned().unwrap_or_default();
            rt.block_on(sessions::claim(&paths, &worker, Path::new(&log)))
        }
        Some("hold-session") => {
            let tag = args.get(1).cloned().unwrap_or_default();
            // A number of milliseconds, or `stdin`: until told.
            let pause: Option<u64> = args.get(2).and_then(|s| s.parse().ok());
            rt.block_on(sessions::hold(&paths, &tag, pause))
        }
        Some("hello") => {
            let version: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            hello(&paths, version)
        }
        _ => {
            eprintln!(
                "usage: test-worker write TAG ROWS [INFLIGHT] | read STOPFILE | hello VERSION"
            );
            ExitCode::from(2)
        }
    }
}

/// Opens a log of acknowledged ids for appending (says why when it cannot).
pub fn open_log(path: &Path) -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| eprintln!("log {}: {e}", path.display()))
        .ok()
}

async fn torture(paths: &Paths, tag: &str, log: &Path, stop: &Path) -> ExitCode {
    use std::io::Write as _;
    let Some(mut log) = open_log(log) else {
        return ExitCode::from(2);
    };
    let options = Options::default();
    let client = loop {
        match Client::connect(paths, &options).await {
            Ok(c) => break c,
            Err(e) if stop.exists() => {
                eprintln!("connect: {e}");
                return ExitCode::FAILURE;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    };
    let mut failed = 0u64;
    let mut n = 0u64;
    while !stop.exists() {
        let id = format!("{tag}-{n}");
        n += 1;
        let batch = Batch::new(vec![
            Statement::new("INSERT INTO a(id) VALUES (?1)").params(vec![id.clone().into()]),
            Statement::new("INSERT INTO b(id) VALUES (?1)").params(vec![id.clone().into()]),
        ]);
        match client.write(batch).await {
            Ok(_) => {
                let _ = writeln!(log, "{id}");
            }
            Err(e) => {
                eprintln!("{id}: {e}");
                failed += 1;
            }
        }
    }
    let s = client.stats();
    println!(
        "acked={} failed={failed} retries={} replays={} reconnects={}",
        s.acknowledged, s.retries, s.replays, s.reconnects
    );
    ExitCode::SUCCESS
}

async fn load(paths: &Paths, tag: &str, rows: u64, log: &Path) -> ExitCode {
    use std::io::Write as _;
    let Some(mut log) = open_log(log) else {
        return ExitCode::from(2);
    };
    let options = Options::default();
    let mut client: Option<Client> = None;
    let (mut ok, mut errors) = (0u64, 0u64);
    let mut categories = std::collections::BTreeSet::new();
    for i in 0..rows {
        if client.is_none() {
            match Client::connect(paths, &options).await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    errors += 1;
                    categories.insert(e.category().name());
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let c = client.as_ref().expect("connected");
        let batch = Batch::one(
            Statement::new("INSERT INTO t(tag, i) VALUES (?1, ?2)")
                .params(vec![Value::Text(tag.to_owned()), Value::Integer(i as i64)]),
        );
        match c.write(batch).await {
            Ok(_) => {
                ok += 1;
                let _ = writeln!(log, "{i}");
            }
            Err(e) => {
                errors += 1;
                categories.insert(e.category().name());
                client = None;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    let cats: Vec<&str> = categories.into_iter().collect();
    println!("ok={ok} errors={errors} categories={}", cats.join(","));
    ExitCode::SUCCESS
}

/// A client with the default options; says why and gives `None` when it
/// cannot connect.
pub async fn connect(paths: &Paths) -> Option<Client> {
    match Client::connect(paths, &Options::default()).await {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("connect: {e}");
            None
        }
    }
}

/// Runs `f(client, i)` for every `i` in `0..rows`, `inflight` at a time
/// on `client`'s one connection (lane `k` takes `k`, `k + inflight`, ..);
/// returns every result.
pub async fn in_lanes<T, F, Fut>(client: &Client, rows: u64, inflight: u64, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Client, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let mut lanes = Vec::new();
    for lane in 0..inflight {
        let (client, f) = (client.clone(), f.clone());
        lanes.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in (lane..rows).step_by(inflight as usize) {
                out.push(f(client.clone(), i).await);
            }
            out
        }));
    }
    let mut all = Vec::new();
    for lane in lanes {
        all.extend(lane.await.expect("a lane panicked"));
    }
    all
}

async fn write(paths: &Paths, tag: &str, rows: u64, inflight: u64) -> ExitCode {
    let Some(client) = connect(paths).await else {
        return ExitCode::FAILURE;
    };
    let tag = tag.to_owned();
    let outcomes = in_lanes(&client, rows, inflight, move |client, i| {
        let tag = tag.clone();
        async move {
            let batch = Batch::one(
                Statement::new("INSERT INTO t(tag, i) VALUES (?1, ?2)")
                    .params(vec![Value::Text(tag.clone()), Value::Integer(i as i64)]),
            );
            let out = client.write(batch).await;
            if let Err(e) = &out {
                eprintln!("write {tag}/{i}: {e}");
            }
            out.is_ok()
        }
    })
    .await;
    let ok = outcomes.iter().filter(|ok| **ok).count();
    let errors = outcomes.len() - ok;
    println!("ok={ok} errors={errors}");
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn read(paths: &Paths, stop: &Path) -> ExitCode {
    let (mut queries, mut errors, mut last) = (0u64, 0u64, 0i64);
    while !stop.exists() {
        let count = Reader::open(paths).and_then(|r| {
            let rows = r.query("SELECT count(*) FROM t", &Default::default())?;
            Ok(match rows.rows.first().and_then(|r| r.first()) {
                Some(Value::Integer(n)) => *n,
                _ => -1,
            })
        });
        match count {
            Ok(n) if n >= last => last = n,
            Ok(n) => {
                eprintln!("count went backwards: {last} -> {n}");
                errors += 1;
            }
            Err(e) => {
                eprintln!("read: {e}");
                errors += 1;
            }
        }
        queries += 1;
    }
    println!("queries={queries} errors={errors} last={last}");
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn hello(paths: &Paths, version: u32) -> ExitCode {
    let mut raw = scribe_tests::raw::Raw::connect(&paths.socket);
    raw.send(&scribe_protocol::Request::Hello { version });
    match raw.recv() {
        Some((_, Ok(scribe_protocol::Answer::Hello(h)))) => {
            // What the arbiter says it speaks, not what was sent.
            println!("hello: protocol {}", h.protocol_version);
            ExitCode::SUCCESS
        }
        Some((_, Ok(other))) => {
            println!("the arbiter answered hello with {other:?}");
            ExitCode::FAILURE
        }
        Some((_, Err(e))) => {
            println!("{e}");
            ExitCode::from(e.category().exit_code())
        }
        None => {
            println!("the arbiter closed the connection");
            ExitCode::FAILURE
        }
    }
}
