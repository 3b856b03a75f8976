//! The kanban workload (described in `docs/kanban.md`), as real
//! processes: creators, workers (some dying silently, some completing
//! twice), a dispatcher that reclaims expired claims, and a dashboard
//! reader — through scribe or through direct SQLite. Used by `scribe demo`
//! and `scribe bench --workloads kanban`.

mod board;
mod check;
mod ops;
pub mod roles;
mod worker;

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::shared::procs::spawn_worker;
use crate::shared::spec::{Sync, Target, WorkerReport, WorkerSpec, Workload};

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
            in_flight: 1,
        }
    };
    let mut specs: Vec<WorkerSpec> = vec![spec("dashboard"), spec("dispatcher")];
    specs.extend((0..config.creators).map(|_| spec("creator")));
    specs.extend((0..config.workers).map(|_| spec("worker")));
    let mut procs = Procs(Vec::new());
    let mut finished: Vec<WorkerSpec> = Vec::new();
    for s in &specs {
        procs.0.push((s.out.clone(), spawn_worker(s)?));
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
                        return Err(format!(
                            "a kanban {} process exited before the run ended ({status})",
                            s.role.as_deref().unwrap_or("worker")
                        ));
                    }
                    deaths += 1;
                    finished.push(s);
                    let replacement = spec("worker");
                    procs
                        .0
                        .push((replacement.out.clone(), spawn_worker(&replacement)?));
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
    outcome.invariants = check::check(&config.db, &outcome);
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
