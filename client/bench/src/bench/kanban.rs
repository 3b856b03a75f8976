//! `scribe bench --workloads kanban`: the kanban workload measured as one
//! bench run.

use std::path::Path;

use crate::kanban::{run, schema_wal, Config};
use crate::shared::procs::{start_arbiter, stop_arbiter};
use crate::shared::report::{percentile, RunResult};
use crate::shared::spec::{Sync, Target};

/// `scribe bench --workloads kanban`: `procs` workers, 2 creators, a
/// dispatcher and a dashboard, for `--seconds` (default 15).
pub fn bench_run(
    seconds: f64,
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
        Some(start_arbiter(&db, sync, &dir.path().join("arbiter.log"))?)
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
        seconds: if seconds > 0.0 { seconds } else { 15.0 },
        progress: false,
    };
    let outcome = run(&config);
    if let Some(a) = arbiter {
        stop_arbiter(a);
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
        in_flight: 1,
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
        writes_per_sync: None,
        sync_mean_us: None,
        reader_idle_qps: None,
        reader_load_qps: None,
        reader_cpu_us: None,
        kinds,
        ratio_vs_direct: None,
        cpu_us_per_write: outcome.sum(|r| r.cpu_us) as f64 / all.len().max(1) as f64,
        client_cpu_us: outcome.sum(|r| r.cpu_us) as f64 / all.len().max(1) as f64,
        arbiter_cpu_us: None,
        arbiter_threads: Vec::new(),
        rounds: 1,
        writes_per_sec_range: None,
    })
}
