//! The kanban workload of `shared/KANBAN.md`, as real processes: creators,
//! workers (some dying silently, some completing twice), a dispatcher that
//! reclaims expired claims, and a dashboard reader — through scribe or
//! through direct SQLite. Used by `scribe demo` and `scribe bench
//! --workloads kanban`.

mod board;
mod ops;
pub mod roles;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::bench::report::{percentile, RunResult};
use crate::bench::spec::{Sync, Target, WorkerReport, WorkerSpec, Workload};
use crate::bench::BenchArgs;

/// The schema (a minimal rewrite of a real kanban board's).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tasks(
  id TEXT PRIMARY KEY, title TEXT NOT NULL, body TEXT, status TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,
  claim_lock TEXT, claim_expires INTEGER, current_run_id INTEGER,
  last_heartbeat_at INTEGER, consecutive_failures INTEGER NOT NULL DEFAULT 0,
  completed_at INTEGER, result TEXT, idempotency_key TEXT);
CREATE TABLE IF NOT EXISTS task_links(parent_id TEXT NOT NULL, child_id TEXT NOT NULL, PRIMARY KEY(parent_id, child_id));
CREATE TABLE IF NOT EXISTS task_runs(
  id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, worker TEXT NOT NULL,
  claim_lock TEXT NOT NULL, started_at INTEGER NOT NULL, ended_at INTEGER, outcome TEXT);
CREATE TABLE IF NOT EXISTS task_events(
  id INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, run_id INTEGER,
  kind TEXT NOT NULL, payload TEXT, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks(status, priority);
CREATE INDEX IF NOT EXISTS tasks_key ON tasks(idempotency_key);
CREATE INDEX IF NOT EXISTS links_child ON task_links(child_id);
CREATE INDEX IF NOT EXISTS runs_task ON task_runs(task_id);
CREATE INDEX IF NOT EXISTS events_task ON task_events(task_id, id);
";

/// The schema for a direct database: WAL first.
pub fn schema_wal() -> String {
    format!("PRAGMA journal_mode=WAL;{SCHEMA}")
}

/// Exit code of a worker that "died" (the orchestrator starts another).
pub const DIED: u8 = 3;

/// Runs one kanban role in a bench-worker process.
pub fn bench_role(spec: &WorkerSpec) -> WorkerReport {
    roles::run(spec, spec.target == Target::Scribe)
}

/// One kanban run's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The database.
    pub db: PathBuf,
    /// Where the processes' files go.
    pub dir: PathBuf,
    /// scribe or direct.
    pub target: Target,
    /// `synchronous` of direct connections.
    pub sync: Sync,
    /// Worker processes.
    pub workers: u32,
    /// Creator processes.
    pub creators: u32,
    /// How long tasks are created.
    pub seconds: f64,
    /// Draw the dashboard's progress bar.
    pub progress: bool,
}

/// What a run produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every process's report, with its role.
    pub reports: Vec<(String, WorkerReport)>,
    /// K1–K6: name, held, detail.
    pub invariants: Vec<(String, bool, String)>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Worker deaths (each replaced).
    pub deaths: u64,
}

impl Outcome {
    /// True when every invariant held and no process reported an error.
    pub fn holds(&self) -> bool {
        self.invariants.iter().all(|(_, ok, _)| *ok)
    }

    /// All latencies of one kind, sorted.
    pub fn latencies(&self, kind: Option<&str>) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .reports
            .iter()
            .flat_map(|(_, r)| r.latencies.iter())
            .filter(|(k, _)| match kind {
                Some(kind) => k == kind,
                None => k != "dashboard",
            })
            .flat_map(|(_, l)| l.iter().copied())
            .collect();
        v.sort_unstable();
        v
    }

    /// Sum of a counter over all reports.
    pub fn sum(&self, f: impl Fn(&WorkerReport) -> u64) -> u64 {
        self.reports.iter().map(|(_, r)| f(r)).sum()
    }
}

struct Procs(Vec<(String, Child)>);

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the workload: every role as its own process, for `seconds`, then
/// a drain (creators stop, workers finish, the dispatcher reclaims what
/// dead workers left), then the invariant checks.
///
/// # Errors
///
/// When a process cannot be started or fails.
pub fn run(config: &Config) -> Result<Outcome, String> {
    let file = |name: &str| config.dir.join(name).to_string_lossy().into_owned();
    let mut next_id = 0u32;
    let mut spec = |role: &str| {
        next_id += 1;
        WorkerSpec {
            target: config.target,
            workload: Workload::Kanban,
            id: next_id,
            db: config.db.to_string_lossy().into_owned(),
            writes: 0,
            seconds: config.seconds,
            batch_size: 0,
            sync: config.sync,
            go: file("go"),
            stop: file("stop"),
            out: file(&format!("{role}{next_id}.json")),
            role: Some(role.to_owned()),
            progress: config.progress && role == "dashboard",
        }
    };
    let mut specs: Vec<WorkerSpec> = vec![spec("dashboard"), spec("dispatcher")];
    specs.extend((0..config.creators).map(|_| spec("creator")));
    specs.extend((0..config.workers).map(|_| spec("worker")));
    let mut procs = Procs(Vec::new());
    let mut finished: Vec<WorkerSpec> = Vec::new();
    for s in &specs {
        procs
            .0
            .push((s.out.clone(), crate::bench::spawn_worker(s)?));
    }
    let mut by_out: std::collections::HashMap<String, WorkerSpec> =
        specs.into_iter().map(|s| (s.out.clone(), s)).collect();
    let started = Instant::now();
    std::fs::write(file("go"), b"").map_err(|e| e.to_string())?;
    let mut deaths = 0;
    // The main phase: replace workers that die.
    while started.elapsed().as_secs_f64() < config.seconds {
        std::thread::sleep(Duration::from_millis(50));
        let mut i = 0;
        while i < procs.0.len() {
            let exited = procs.0[i].1.try_wait().map_err(|e| e.to_string())?;
            match exited {
                None => i += 1,
                Some(status) => {
                    let (out, _) = procs.0.remove(i);
                    let s = by_out.remove(&out).ok_or("unknown process")?;
                    if status.code() != Some(i32::from(DIED)) {
                        return Err(format!("a {:?} process exited with {status}", s.role));
                    }
                    deaths += 1;
                    finished.push(s);
                    let replacement = spec("worker");
                    procs.0.push((
                        replacement.out.clone(),
                        crate::bench::spawn_worker(&replacement)?,
                    ));
                    by_out.insert(replacement.out.clone(), replacement);
                }
            }
        }
    }
    // Drain: stop creating and claiming; workers finish what they hold.
    std::fs::write(file("stop"), b"").map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut waiting: Vec<(String, Child)> = std::mem::take(&mut procs.0);
    let (mut workers_and_creators, mut rest): (Vec<_>, Vec<_>) =
        waiting.drain(..).partition(|(out, _)| {
            matches!(
                by_out.get(out).and_then(|s| s.role.as_deref()),
                Some("worker" | "creator")
            )
        });
    for (out, c) in &mut workers_and_creators {
        wait_until(c, deadline)?;
        finished.extend(by_out.remove(out));
    }
    std::fs::write(format!("{}.workers-done", file("stop")), b"").map_err(|e| e.to_string())?;
    for (out, c) in &mut rest {
        wait_until(c, deadline)?;
        finished.extend(by_out.remove(out));
    }
    let elapsed = started.elapsed();
    let mut reports = Vec::new();
    for s in finished {
        let bytes = std::fs::read(&s.out).map_err(|e| format!("no report {}: {e}", s.out))?;
        let r: WorkerReport = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        reports.push((s.role.unwrap_or_default(), r));
    }
    let mut outcome = Outcome {
        reports,
        invariants: Vec::new(),
        elapsed,
        deaths,
    };
    outcome.invariants = check(&config.db, &outcome);
    Ok(outcome)
}

fn wait_until(c: &mut Child, deadline: Instant) -> Result<(), String> {
    loop {
        if let Some(status) = c.try_wait().map_err(|e| e.to_string())? {
            return if status.success() || status.code() == Some(i32::from(DIED)) {
                Ok(())
            } else {
                Err(format!("a kanban process exited with {status}"))
            };
        }
        if Instant::now() > deadline {
            return Err("a kanban process did not finish".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// K1–K6 on the final database, plus the processes' own reports.
fn check(db: &Path, outcome: &Outcome) -> Vec<(String, bool, String)> {
    let c =
        match rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        {
            Ok(c) => c,
            Err(e) => return vec![("open".into(), false, e.to_string())],
        };
    let _ = c.busy_timeout(Duration::from_secs(5));
    let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap_or(-1) };
    let zero = |name: &str, what: &str, sql: &str| {
        let n = count(sql);
        (
            name.to_owned(),
            n == 0,
            if n == 0 {
                what.to_owned()
            } else {
                format!("{what}: {n} found")
            },
        )
    };
    let live: Vec<&String> = outcome
        .reports
        .iter()
        .flat_map(|(_, r)| &r.violations)
        .collect();
    let errors: Vec<&String> = outcome
        .reports
        .iter()
        .flat_map(|(_, r)| &r.errors)
        .collect();
    let completed: Vec<&String> = outcome
        .reports
        .iter()
        .flat_map(|(_, r)| &r.completed)
        .collect();
    let missing = completed
        .iter()
        .filter(|t| {
            c.query_row(
                "SELECT count(*) FROM tasks t WHERE t.id = ?1 AND t.status = 'done'
                 AND EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = t.id AND e.kind = 'completed')",
                [t.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_or(0)
                != 1
        })
        .count();
    let runs = count("SELECT count(*) FROM task_runs");
    let claimed = count("SELECT count(*) FROM task_events WHERE kind = 'claimed'");
    let mut k1 = zero(
        "K1",
        "never two live runs for a task",
        "SELECT count(*) FROM (SELECT task_id FROM task_runs WHERE ended_at IS NULL GROUP BY task_id HAVING count(*) > 1)",
    );
    let k1_live: Vec<&&String> = live.iter().filter(|v| v.starts_with("K1")).collect();
    if !k1_live.is_empty() {
        k1 = (
            "K1".into(),
            false,
            format!("seen during the run: {k1_live:?}"),
        );
    }
    let mut k2 = zero(
        "K2",
        "running exactly when claim_lock and current_run_id are set",
        "SELECT count(*) FROM tasks WHERE (status = 'running') != (claim_lock IS NOT NULL AND current_run_id IS NOT NULL)",
    );
    let k2_live: Vec<&&String> = live.iter().filter(|v| v.starts_with("K2")).collect();
    if !k2_live.is_empty() {
        k2 = (
            "K2".into(),
            false,
            format!("seen during the run: {k2_live:?}"),
        );
    }
    // A failed query counts -1: report it as a violation, never as zero.
    let twice = [
        count("SELECT count(*) FROM (SELECT task_id FROM task_runs WHERE outcome = 'completed' GROUP BY task_id HAVING count(*) > 1)"),
        count("SELECT count(*) FROM (SELECT claim_lock FROM task_runs GROUP BY claim_lock HAVING count(*) > 1)"),
    ]
    .iter()
    .map(|&n| if n < 0 { 1 } else { n })
    .sum::<i64>();
    let caught = outcome.sum(|r| r.caught);
    let late_accepted = errors
        .iter()
        .filter(|e| e.contains("late complete") || e.contains("completed twice"))
        .count();
    let k3 = (
        "K3".into(),
        twice == 0 && late_accepted == 0,
        format!(
            "no claim granted twice, no task completed twice; {caught} late or repeated completes and stale heartbeats refused{}",
            if twice + late_accepted as i64 > 0 { format!(" — VIOLATED: {twice} in the file, {late_accepted} accepted") } else { String::new() }
        ),
    );
    let k4 = (
        "K4".into(),
        missing == 0 && runs == claimed && runs >= 0,
        format!(
            "{} acknowledged completes all done with a completed event ({missing} missing); {claimed} claimed events for {runs} runs",
            completed.len()
        ),
    );
    let k5 = zero(
        "K5",
        "no child claimed before all its parents completed",
        "SELECT count(*) FROM task_events ce JOIN task_links l ON l.child_id = ce.task_id
         WHERE ce.kind = 'claimed' AND NOT EXISTS (SELECT 1 FROM task_events pe
           WHERE pe.task_id = l.parent_id AND pe.kind = 'completed' AND pe.id < ce.id)",
    );
    let integrity: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| e.to_string());
    let running = count("SELECT count(*) FROM tasks WHERE status = 'running'");
    let k6 = (
        "K6".into(),
        integrity == "ok" && running == 0,
        // `running` is -1 when the query failed: not 0, so K6 fails.
        format!("integrity_check {integrity}; {running} tasks running at the end"),
    );
    let clean = (
        "processes".into(),
        errors
            .iter()
            .all(|e| !(e.contains("late complete") || e.contains("completed twice")))
            && errors.is_empty(),
        if errors.is_empty() {
            "no process reported an error".into()
        } else {
            format!("errors: {errors:?}")
        },
    );
    vec![k1, k2, k3, k4, k5, k6, clean]
}

/// `scribe bench --workloads kanban`: `procs` workers, 2 creators, a
/// dispatcher and a dashboard, for `--seconds` (default 15).
pub fn bench_run(
    args: &BenchArgs,
    base: &Path,
    sync: Sync,
    procs: u32,
    target: Target,
) -> Result<RunResult, String> {
    let dir = tempfile::Builder::new()
        .prefix("sk")
        .tempdir_in(base)
        .map_err(|e| e.to_string())?;
    let db = dir.path().join("kanban.db");
    let c = rusqlite::Connection::open(&db).map_err(|e| e.to_string())?;
    c.execute_batch(&schema_wal()).map_err(|e| e.to_string())?;
    drop(c);
    let arbiter = if target == Target::Scribe {
        Some(crate::bench::start_arbiter(
            &db,
            sync,
            &dir.path().join("arbiter.log"),
        )?)
    } else {
        None
    };
    let config = Config {
        db: db.clone(),
        dir: dir.path().to_path_buf(),
        target,
        sync,
        workers: procs,
        creators: 2,
        seconds: if args.seconds > 0.0 {
            args.seconds
        } else {
            15.0
        },
        progress: false,
    };
    let outcome = run(&config);
    if let Some(a) = arbiter {
        crate::bench::stop_arbiter(a);
    }
    let outcome = outcome?;
    let secs = outcome.elapsed.as_secs_f64();
    let all = outcome.latencies(None);
    let mut kinds = Vec::new();
    for kind in [
        "create",
        "claim",
        "heartbeat",
        "complete",
        "block",
        "reclaim",
    ] {
        let l = outcome.latencies(Some(kind));
        kinds.push((kind.to_owned(), l.len() as f64 / secs, percentile(&l, 99.0)));
    }
    let failed: Vec<String> = outcome
        .invariants
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(n, _, d)| format!("{n}: {d}"))
        .collect();
    Ok(RunResult {
        target: target.name().into(),
        workload: "kanban".into(),
        procs,
        sync: sync.name().into(),
        writes_per_sec: all.len() as f64 / secs,
        rows_per_sec: all.len() as f64 / secs,
        p50_us: percentile(&all, 50.0),
        p99_us: percentile(&all, 99.0),
        max_us: all.last().copied().map_or(0, u64::from),
        busy_retries: outcome.sum(|r| r.busy_retries),
        conflicts: outcome.sum(|r| r.conflicts),
        verified: outcome.holds(),
        verify_detail: failed.join("; "),
        mean_group: None,
        reader_idle_qps: None,
        reader_load_qps: None,
        kinds,
        ratio_vs_direct: None,
    })
}
