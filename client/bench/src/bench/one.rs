//! One bench configuration: the schema, the run, the check, the figures.

use std::path::Path;

use super::{worker, BenchArgs};
use crate::shared::procs::{fresh_dir, spawn_worker, start_arbiter, stop_arbiter, Children};
use crate::shared::report::{percentile, RunResult};
use crate::shared::spec::{Sync, Target, WorkerReport, WorkerSpec, Workload};
use crate::shared::{cpu, direct};

/// Creates the workload's tables in WAL mode.
pub fn schema(db: &Path, workload: Workload, tasks: u64) -> Result<(), String> {
    let c = rusqlite::Connection::open(db).map_err(|e| e.to_string())?;
    c.busy_timeout(direct::BUSY_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let sql = match workload {
        Workload::Insert | Workload::Batch => {
            "PRAGMA journal_mode=WAL;
             CREATE TABLE bench(id INTEGER PRIMARY KEY, worker INTEGER NOT NULL, n INTEGER NOT NULL, payload BLOB NOT NULL);"
                .to_owned()
        }
        Workload::Claim | Workload::Session => {
            "PRAGMA journal_mode=WAL;
             CREATE TABLE tasks(id INTEGER PRIMARY KEY, owner INTEGER, claimed_at INTEGER);
             CREATE INDEX tasks_free ON tasks(id) WHERE owner IS NULL;
             CREATE TABLE bench(id INTEGER PRIMARY KEY, worker INTEGER NOT NULL, n INTEGER NOT NULL, payload BLOB NOT NULL);"
                .to_owned()
        }
        Workload::Kanban => crate::kanban::schema_wal(),
    };
    c.execute_batch(&sql).map_err(|e| e.to_string())?;
    if matches!(workload, Workload::Claim | Workload::Session) {
        c.execute_batch(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {tasks})
             INSERT INTO tasks(id) SELECT i FROM n;"
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Puts in the rows readers look up, so that their idle baseline reads
/// the same data as their run under load (an empty table answers a lookup
/// from its root page, several times faster than a table of rows).
fn lookup_rows(db: &Path) -> Result<(), String> {
    let c = rusqlite::Connection::open(db).map_err(|e| e.to_string())?;
    c.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO bench(id, worker, n, payload) SELECT i, -1, i, randomblob(?2) FROM n",
        [worker::READ_ROWS as i64, worker::ROW_BYTES as i64],
    )
    .map_err(|e| e.to_string())?;
    Ok(())
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
        return super::kanban::bench_run(args.seconds, base, sync, procs, target);
    }
    let dir = fresh_dir(base)?;
    let db = dir.path().join("bench.db");
    schema(&db, workload, u64::from(procs) * args.writes)?;
    if args.readers > 0 {
        lookup_rows(&db)?;
    }
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
        in_flight: args.in_flight,
    };
    let mut readers = Children(Vec::new());
    for r in 0..args.readers {
        readers.0.push(spawn_worker(&spec(r, Some("reader")))?);
    }
    let mut workers = Children(Vec::new());
    for w in 0..procs {
        workers.0.push(spawn_worker(&spec(w, None))?);
    }
    let arbiter_pid = arbiter.as_ref().map(std::process::Child::id);
    let arbiter_cpu = arbiter_pid.and_then(cpu::process_us);
    let threads_before = arbiter_pid.map(cpu::threads_us).unwrap_or_default();
    std::fs::write(file("go"), b"").map_err(|e| e.to_string())?;
    let mut failed = None;
    for c in &mut workers.0 {
        let status = c.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            failed = Some(format!("a worker exited with {status}"));
        }
    }
    let arbiter_cpu = match (arbiter_cpu, arbiter_pid.and_then(cpu::process_us)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let threads_after = arbiter_pid.map(cpu::threads_us).unwrap_or_default();
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
    let groups = match (&arbiter, target) {
        (Some(_), Target::Scribe) => groups(&db),
        _ => None,
    };
    if let Some(a) = arbiter {
        stop_arbiter(a);
    }
    let (verified, verify_detail) = verify(&db, workload, &reports);
    let ops: u64 = reports.iter().map(|r| r.ops).sum();
    let mut result = summarize(
        Config {
            target,
            workload,
            sync,
            procs,
            in_flight: if target == Target::Scribe {
                args.in_flight.max(1)
            } else {
                1
            },
        },
        &reports,
        &reader_reports,
        (verified, verify_detail),
        groups,
        arbiter_cpu,
    );
    result.arbiter_threads = cpu::per_op(&threads_before, &threads_after, ops);
    Ok(result)
}

fn read_report(path: &str) -> Result<WorkerReport, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("no report {path}: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("bad report {path}: {e}"))
}

/// The arbiter's mean writes per commit, and per sync (with the sync's
/// mean time) when it syncs.
fn groups(db: &Path) -> Option<(f64, Option<(f64, u64)>)> {
    let paths = scribe_protocol::Paths::for_db(db, None).ok()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let options = scribe_client::Options {
            autostart: false,
            ..scribe_client::Options::default()
        };
        let c = scribe_client::Connection::connect(&paths, &options)
            .await
            .ok()?;
        c.status().await.ok().map(|s| {
            let per_sync =
                (s.syncs > 0).then(|| (s.writes as f64 / s.syncs as f64, s.sync_mean_us));
            (s.mean_group, per_sync)
        })
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
            // Rows of `worker` −1 are the readers' (`lookup_rows`).
            let n = count("SELECT count(*) FROM bench WHERE worker >= 0");
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
        Workload::Claim | Workload::Session => {
            let runs = count("SELECT count(*) FROM bench WHERE worker >= 0");
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
            } else if workload == Workload::Session && runs != total as i64 {
                (false, format!("{runs} runs for {total} claims"))
            } else {
                (true, String::new())
            }
        }
        Workload::Kanban => (false, "checked by the kanban run".into()),
    }
}

#[allow(clippy::too_many_arguments)]
/// Which configuration a run was.
struct Config {
    target: Target,
    workload: Workload,
    sync: Sync,
    procs: u32,
    in_flight: u32,
}

fn summarize(
    config: Config,
    reports: &[WorkerReport],
    readers: &[WorkerReport],
    (verified, verify_detail): (bool, String),
    groups: Option<(f64, Option<(f64, u64)>)>,
    arbiter_cpu_us: Option<u64>,
) -> RunResult {
    let Config {
        target,
        workload,
        sync,
        procs,
        in_flight,
    } = config;
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
    let per_write = |us: u64| us as f64 / ops.max(1) as f64;
    let client_cpu = per_write(reports.iter().map(|r| r.cpu_us).sum());
    let arbiter_cpu = arbiter_cpu_us.map(per_write);
    let qps = |f: fn(&(f64, f64)) -> f64| -> Option<f64> {
        let v: Vec<f64> = readers
            .iter()
            .filter_map(|r| r.reader_qps.as_ref().map(f))
            .collect();
        (!v.is_empty()).then(|| v.iter().sum())
    };
    // The readers' CPU per query, their mean, idle and under load.
    let reader_cpu: Vec<(f64, f64)> = readers.iter().filter_map(|r| r.reader_cpu_us).collect();
    let reader_cpu_us = (!reader_cpu.is_empty()).then(|| {
        let n = reader_cpu.len() as f64;
        (
            reader_cpu.iter().map(|c| c.0).sum::<f64>() / n,
            reader_cpu.iter().map(|c| c.1).sum::<f64>() / n,
        )
    });
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
        mean_group: groups.map(|g| g.0),
        writes_per_sync: groups.and_then(|g| g.1.map(|s| s.0)),
        sync_mean_us: groups.and_then(|g| g.1.map(|s| s.1)),
        reader_idle_qps: qps(|q| q.0),
        reader_load_qps: qps(|q| q.1),
        reader_cpu_us,
        kinds: Vec::new(),
        ratio_vs_direct: None,
        in_flight,
        cpu_us_per_write: client_cpu + arbiter_cpu.unwrap_or(0.0),
        arbiter_threads: Vec::new(),
        rounds: 1,
        writes_per_sec_range: None,
        client_cpu_us: client_cpu,
        arbiter_cpu_us: arbiter_cpu,
    }
}
