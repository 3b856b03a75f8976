//! `scribe bench`: the same workload through scribe and through direct
//! SQLite, in one invocation, on fresh databases, with real processes.
//!
//! For every process count, workload and sync setting it runs each target
//! in turn (the order alternates, so drift on a shared machine does not
//! favour one), spawning N worker processes (`scribe bench-worker`) that
//! start together, measure every request's latency, and report back; the
//! database is then checked (row counts, no duplicates, no double claims)
//! and the result marked `verified`.

mod direct;
pub mod report;
pub mod spec;
pub mod worker;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use report::{percentile, RunResult};
use spec::{Sync, Target, WorkerReport, WorkerSpec, Workload};

pub use direct::{is_busy, Direct, Failed};

/// `scribe bench` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Writer process counts to sweep.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
    pub procs: Vec<u32>,
    /// Targets to compare.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "scribe,direct,flock"
    )]
    pub targets: Vec<Target>,
    /// Workloads to run.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "insert")]
    pub workloads: Vec<Workload>,
    /// `synchronous` settings to run (every target uses the same).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "full")]
    pub sync: Vec<Sync>,
    /// Requests per process.
    #[arg(long, default_value_t = 1000)]
    pub writes: u64,
    /// Run each configuration for this many seconds instead.
    #[arg(long, default_value_t = 0.0)]
    pub seconds: f64,
    /// Rows per request for the batch workload.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: u32,
    /// Reader processes querying during the run (their queries/s are
    /// compared with an idle baseline measured just before).
    #[arg(long, default_value_t = 0)]
    pub readers: u32,
    /// One JSON object per line per run instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON lines to this file (with the table on stdout).
    #[arg(long, value_name = "FILE")]
    pub json_file: Option<PathBuf>,
    /// Also write a plot of throughput and p99 against process count.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Where to put the fresh databases (default: a temp dir).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Runs the bench; prints as it goes.
///
/// # Errors
///
/// A run that could not be set up or whose workers failed.
pub fn run(args: &BenchArgs) -> Result<Vec<RunResult>, String> {
    let base = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir(),
    };
    let mut results: Vec<RunResult> = Vec::new();
    let mut flip = false;
    for &workload in &args.workloads {
        for &sync in &args.sync {
            if workload == Workload::Batch && !args.json {
                let ceiling = ceiling(&base, sync)?;
                println!(
                    "CPU ceiling (1 process, 10,000 rows per commit, {}): {ceiling:.0} rows/s",
                    sync.name()
                );
            }
            for &procs in &args.procs {
                let mut order = args.targets.clone();
                if flip {
                    order.reverse();
                }
                flip = !flip;
                let mut batch = Vec::new();
                for &target in &order {
                    let r = run_one(args, &base, workload, sync, procs, target)?;
                    if !args.json {
                        eprintln!(
                            "  {} {} {} procs {}: {:.0} writes/s, p99 {} µs{}",
                            workload.name(),
                            sync.name(),
                            procs,
                            target.name(),
                            r.writes_per_sec,
                            r.p99_us,
                            if r.verified { "" } else { " NOT VERIFIED" }
                        );
                    }
                    batch.push(r);
                }
                let direct = batch
                    .iter()
                    .find(|r| r.target == "direct")
                    .map(|r| r.writes_per_sec);
                for r in &mut batch {
                    if r.target == "scribe" {
                        r.ratio_vs_direct = direct.map(|d| r.writes_per_sec / d.max(1e-9));
                    }
                }
                batch.sort_by_key(|r| r.target.clone());
                if args.json {
                    for r in &batch {
                        println!("{}", serde_json::to_string(r).unwrap_or_default());
                    }
                }
                results.extend(batch);
            }
        }
    }
    if !args.json {
        println!("{}", report::table(&results));
        if let Some(t) = report::extras(&results) {
            println!("{t}");
        }
    }
    if let Some(path) = &args.json_file {
        let lines: String = results
            .iter()
            .map(|r| serde_json::to_string(r).unwrap_or_default() + "\n")
            .collect();
        std::fs::write(path, lines).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(svg) = &args.svg {
        std::fs::write(svg, report::svg(&results))
            .map_err(|e| format!("cannot write {}: {e}", svg.display()))?;
    }
    Ok(results)
}

/// A fresh directory for one run.
fn fresh_dir(base: &Path) -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix("sb")
        .tempdir_in(base)
        .map_err(|e| format!("cannot make a temp dir in {}: {e}", base.display()))
}

/// Rows/s of one process writing 10,000 rows per commit: the CPU ceiling.
fn ceiling(base: &Path, sync: Sync) -> Result<f64, String> {
    let dir = fresh_dir(base)?;
    let db = dir.path().join("ceiling.db");
    schema(&db, Workload::Insert, 0)?;
    let mut d = Direct::open(db.to_str().unwrap_or_default(), sync.name(), false)?;
    let started = Instant::now();
    let mut rows = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        let from = rows;
        d.transaction(|c| {
            let mut st =
                c.prepare_cached("INSERT INTO bench(worker, n, payload) VALUES (0, ?1, ?2)")?;
            for n in from..from + 10_000 {
                st.execute(rusqlite::params![n as i64, worker::payload(0, n)])?;
            }
            Ok(())
        })
        .map_err(|_| "ceiling run failed".to_owned())?;
        rows += 10_000;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// Creates the workload's tables in WAL mode.
fn schema(db: &Path, workload: Workload, tasks: u64) -> Result<(), String> {
    let c = rusqlite::Connection::open(db).map_err(|e| e.to_string())?;
    c.busy_timeout(direct::BUSY_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let sql = match workload {
        Workload::Insert | Workload::Batch => {
            "PRAGMA journal_mode=WAL;
             CREATE TABLE bench(id INTEGER PRIMARY KEY, worker INTEGER NOT NULL, n INTEGER NOT NULL, payload BLOB NOT NULL);"
                .to_owned()
        }
        Workload::Claim => {
            "PRAGMA journal_mode=WAL;
             CREATE TABLE tasks(id INTEGER PRIMARY KEY, owner INTEGER, claimed_at INTEGER);
             CREATE INDEX tasks_free ON tasks(id) WHERE owner IS NULL;
             CREATE TABLE bench(id INTEGER PRIMARY KEY, worker INTEGER NOT NULL, n INTEGER NOT NULL, payload BLOB NOT NULL);"
                .to_owned()
        }
        Workload::Kanban => crate::kanban::schema_wal(),
    };
    c.execute_batch(&sql).map_err(|e| e.to_string())?;
    if workload == Workload::Claim {
        c.execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {tasks})
             INSERT INTO tasks(id) SELECT i FROM n;"
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Kills and reaps children when a run ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `scribed` on `db` in the foreground, as our child.
pub fn start_arbiter(db: &Path, sync: Sync, log: &Path) -> Result<Child, String> {
    let options = crate::Options {
        self_arbiter: true,
        ..crate::Options::default()
    };
    let mut cmd = crate::autostart::arbiter_command(&options).map_err(|e| e.to_string())?;
    let log = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let child = cmd
        .arg("--db")
        .arg(db)
        .args(["--synchronous", sync.name()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start scribed: {e}"))?;
    let paths = scribe_protocol::Paths::for_db(db, None).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&paths.socket).is_err() {
        if Instant::now() > deadline {
            return Err("scribed did not become ready".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(child)
}

/// Stops the arbiter the way an operator does (SIGTERM drains).
pub fn stop_arbiter(mut child: Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

/// Spawns one worker and waits for its `ready`.
pub fn spawn_worker(spec: &WorkerSpec) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let json = serde_json::to_string(spec).map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg("bench-worker")
        .arg(json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start a worker: {e}"))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no worker stdout")?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("a worker failed to start ({:?})", line.trim()));
    }
    Ok(child)
}

/// One configuration: set up, run, verify, measure.
pub fn run_one(
    args: &BenchArgs,
    base: &Path,
    workload: Workload,
    sync: Sync,
    procs: u32,
    target: Target,
) -> Result<RunResult, String> {
    if workload == Workload::Kanban {
        return crate::kanban::bench_run(args, base, sync, procs, target);
    }
    let dir = fresh_dir(base)?;
    let db = dir.path().join("bench.db");
    schema(&db, workload, u64::from(procs) * args.writes)?;
    let arbiter = if target == Target::Scribe {
        Some(start_arbiter(&db, sync, &dir.path().join("arbiter.log"))?)
    } else {
        None
    };
    let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let spec = |id: u32, role: Option<&str>| WorkerSpec {
        target,
        workload,
        id,
        db: db.to_string_lossy().into_owned(),
        writes: args.writes,
        seconds: args.seconds,
        batch_size: args.batch_size,
        sync,
        go: file("go"),
        stop: file("stop"),
        out: file(&format!("{}{id}.json", role.unwrap_or("w"))),
        role: role.map(str::to_owned),
        progress: false,
    };
    let mut readers = Children(Vec::new());
    for r in 0..args.readers {
        readers.0.push(spawn_worker(&spec(r, Some("reader")))?);
    }
    let mut workers = Children(Vec::new());
    for w in 0..procs {
        workers.0.push(spawn_worker(&spec(w, None))?);
    }
    std::fs::write(file("go"), b"").map_err(|e| e.to_string())?;
    let mut failed = None;
    for c in &mut workers.0 {
        let status = c.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            failed = Some(format!("a worker exited with {status}"));
        }
    }
    std::fs::write(file("stop"), b"").map_err(|e| e.to_string())?;
    for c in &mut readers.0 {
        let _ = c.wait();
    }
    let reports: Vec<WorkerReport> = (0..procs)
        .map(|w| read_report(&file(&format!("w{w}.json"))))
        .collect::<Result<_, _>>()?;
    let reader_reports: Vec<WorkerReport> = (0..args.readers)
        .map(|r| read_report(&file(&format!("reader{r}.json"))))
        .collect::<Result<_, _>>()?;
    if let Some(f) = failed {
        let errors: Vec<&String> = reports.iter().flat_map(|r| &r.errors).collect();
        return Err(format!("{f}: {errors:?}"));
    }
    let mean_group = match (&arbiter, target) {
        (Some(_), Target::Scribe) => mean_group(&db),
        _ => None,
    };
    if let Some(a) = arbiter {
        stop_arbiter(a);
    }
    let (verified, verify_detail) = verify(&db, workload, &reports);
    Ok(summarize(
        target,
        workload,
        sync,
        procs,
        &reports,
        &reader_reports,
        verified,
        verify_detail,
        mean_group,
    ))
}

fn read_report(path: &str) -> Result<WorkerReport, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("no report {path}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("bad report {path}: {e}"))
}

fn mean_group(db: &Path) -> Option<f64> {
    let paths = scribe_protocol::Paths::for_db(db, None).ok()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let options = crate::Options {
            autostart: false,
            ..crate::Options::default()
        };
        let c = crate::Connection::connect(&paths, &options).await.ok()?;
        c.status().await.ok().map(|s| s.mean_group)
    })
}

/// Checks the database after a run.
fn verify(db: &Path, workload: Workload, reports: &[WorkerReport]) -> (bool, String) {
    let c = match rusqlite::Connection::open(db) {
        Ok(c) => c,
        Err(e) => return (false, e.to_string()),
    };
    let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap_or(-1) };
    let rows: u64 = reports.iter().map(|r| r.rows).sum();
    match workload {
        Workload::Insert | Workload::Batch => {
            let n = count("SELECT count(*) FROM bench");
            let dup = count(
                "SELECT count(*) FROM (SELECT 1 FROM bench GROUP BY worker, n HAVING count(*) > 1)",
            );
            if n != rows as i64 {
                (false, format!("{n} rows, {rows} acknowledged"))
            } else if dup != 0 {
                (false, format!("{dup} duplicated rows"))
            } else {
                (true, String::new())
            }
        }
        Workload::Claim => {
            let mut claimed: Vec<i64> = reports.iter().flat_map(|r| r.claimed.clone()).collect();
            let total = claimed.len();
            claimed.sort_unstable();
            claimed.dedup();
            let owned = count("SELECT count(*) FROM tasks WHERE owner IS NOT NULL");
            let mismatched: i64 = reports
                .iter()
                .enumerate()
                .map(|(w, r)| {
                    let mine: i64 = c
                        .query_row(
                            "SELECT count(*) FROM tasks WHERE owner = ?1",
                            [w as i64],
                            |x| x.get(0),
                        )
                        .unwrap_or(-1);
                    i64::from(mine != r.claimed.len() as i64)
                })
                .sum();
            if claimed.len() != total {
                (
                    false,
                    format!("{} tasks claimed twice", total - claimed.len()),
                )
            } else if owned != total as i64 || mismatched != 0 {
                (false, format!("{owned} owned, {total} claims acknowledged"))
            } else {
                (true, String::new())
            }
        }
        Workload::Kanban => (false, "checked by the kanban run".into()),
    }
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    target: Target,
    workload: Workload,
    sync: Sync,
    procs: u32,
    reports: &[WorkerReport],
    readers: &[WorkerReport],
    verified: bool,
    verify_detail: String,
    mean_group: Option<f64>,
) -> RunResult {
    let start = reports.iter().map(|r| r.start_us).min().unwrap_or(0);
    let end = reports.iter().map(|r| r.end_us).max().unwrap_or(0);
    let secs = (end.saturating_sub(start) as f64 / 1e6).max(1e-6);
    let mut all: Vec<u32> = reports
        .iter()
        .flat_map(|r| r.latencies.iter().flat_map(|(_, l)| l.iter().copied()))
        .collect();
    all.sort_unstable();
    let ops: u64 = reports.iter().map(|r| r.ops).sum();
    let rows: u64 = reports.iter().map(|r| r.rows).sum();
    let qps = |f: fn(&(f64, f64)) -> f64| -> Option<f64> {
        let v: Vec<f64> = readers
            .iter()
            .filter_map(|r| r.reader_qps.as_ref().map(f))
            .collect();
        (!v.is_empty()).then(|| v.iter().sum())
    };
    RunResult {
        target: target.name().into(),
        workload: workload.name().into(),
        procs,
        sync: sync.name().into(),
        writes_per_sec: ops as f64 / secs,
        rows_per_sec: rows as f64 / secs,
        p50_us: percentile(&all, 50.0),
        p99_us: percentile(&all, 99.0),
        max_us: all.last().copied().map_or(0, u64::from),
        busy_retries: reports.iter().map(|r| r.busy_retries).sum(),
        conflicts: reports.iter().map(|r| r.conflicts).sum(),
        verified,
        verify_detail,
        mean_group,
        reader_idle_qps: qps(|q| q.0),
        reader_load_qps: qps(|q| q.1),
        kinds: Vec::new(),
        ratio_vs_direct: None,
    }
}
