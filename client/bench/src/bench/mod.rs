//! `scribe bench`: the same workload through scribe and through direct
//! SQLite, in one invocation, on fresh databases, with real processes.
//!
//! For every process count, workload and sync setting it runs each target
//! in turn (the order alternates, so drift on a shared machine does not
//! favour one), spawning N worker processes (`scribe bench-worker`) that
//! start together, measure every request's latency, and report back; the
//! database is then checked (row counts, no duplicates, no double claims)
//! and the result marked `verified`.

mod kanban;
mod one;
mod scribe_worker;
pub mod worker;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::shared::direct::Direct;
use crate::shared::procs::fresh_dir;
use crate::shared::report::{self, RunResult};
use crate::shared::spec::{Sync, Target, Workload};

use one::{run_one, schema};

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
    /// Writes each scribe worker keeps in flight on its connection
    /// (pipelined; direct workers write one at a time whatever this is).
    #[arg(long, default_value_t = 1)]
    pub in_flight: u32,
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
    /// Runs of each configuration, the targets' order alternating; each
    /// target reports its median run (by writes/s) with the range, and
    /// the ratio is of the medians. On a noisy machine one run's ratio
    /// can be off by a third.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub rounds: u32,
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
                let mut runs: Vec<Vec<RunResult>> = vec![Vec::new(); args.targets.len()];
                for _ in 0..args.rounds {
                    let mut order: Vec<usize> = (0..args.targets.len()).collect();
                    if flip {
                        order.reverse();
                    }
                    flip = !flip;
                    for i in order {
                        let target = args.targets[i];
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
                        runs[i].push(r);
                    }
                }
                let mut batch: Vec<RunResult> = runs.into_iter().filter_map(median).collect();
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

/// The median run of one target (by writes/s), carrying the range of all
/// its runs; every run must have verified for the median to say so.
fn median(mut runs: Vec<RunResult>) -> Option<RunResult> {
    if runs.len() < 2 {
        return runs.pop();
    }
    runs.sort_by(|a, b| a.writes_per_sec.total_cmp(&b.writes_per_sec));
    let (low, high) = (runs[0].writes_per_sec, runs[runs.len() - 1].writes_per_sec);
    let failed = runs
        .iter()
        .find(|r| !r.verified)
        .map(|r| r.verify_detail.clone());
    let n = runs.len();
    let mut m = runs.swap_remove(n / 2);
    m.rounds = n as u32;
    m.writes_per_sec_range = Some((low, high));
    if let Some(detail) = failed {
        m.verified = false;
        m.verify_detail = detail;
    }
    Some(m)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(writes: f64, verified: bool) -> RunResult {
        RunResult {
            writes_per_sec: writes,
            verified,
            verify_detail: if verified {
                String::new()
            } else {
                "lost rows".into()
            },
            ..RunResult::default()
        }
    }

    #[test]
    fn the_median_run_carries_the_range_and_any_failed_check() {
        let m = median(vec![run(3.0, true), run(1.0, true), run(2.0, true)]).unwrap();
        assert_eq!((m.writes_per_sec, m.rounds), (2.0, 3));
        assert_eq!(m.writes_per_sec_range, Some((1.0, 3.0)));
        assert!(m.verified);
        let m = median(vec![run(3.0, true), run(1.0, false), run(2.0, true)]).unwrap();
        assert_eq!(m.writes_per_sec, 2.0);
        assert!(!m.verified, "a run that failed its check fails the row");
        assert_eq!(m.verify_detail, "lost rows");
        let one = median(vec![run(5.0, true)]).unwrap();
        assert_eq!((one.writes_per_sec, one.writes_per_sec_range), (5.0, None));
        assert!(median(Vec::new()).is_none());
    }
}
