//! One bench worker process: `scribe bench-worker SPEC_JSON`.
//!
//! It sets up its connection, says `ready`, waits for the go file, runs its
//! workload, and writes a [`WorkerReport`] as JSON.

use std::path::Path;
use std::time::{Duration, Instant};

use scribe_protocol::{Paths, Value};

use crate::shared::cpu;
use crate::shared::direct::{Direct, Failed};
use crate::shared::procs::ready_and_wait;
use crate::shared::spec::{now_us, Target, WorkerReport, WorkerSpec, Workload};

/// Bytes of payload per row.
pub const ROW_BYTES: usize = 100;

/// Rows put in before a run with readers (`worker` −1), the rows they look
/// up.
pub const READ_ROWS: u64 = 100_000;
/// The insert of the `insert` and `batch` workloads.
pub const INSERT: &str = "INSERT INTO bench(worker, n, payload) VALUES (?1, ?2, ?3)";
/// The claim of the `claim` workload (scribe: one statement, a
/// compare-and-set that expects one row).
pub const CLAIM_ONE: &str = "UPDATE tasks SET owner = ?1, claimed_at = ?2 \
                         WHERE id = (SELECT id FROM tasks WHERE owner IS NULL LIMIT 1) RETURNING id";

/// The read of the `claim` (direct) and `session` workloads: a free task.
pub const FREE_TASK: &str = "SELECT id FROM tasks WHERE owner IS NULL LIMIT 1";
/// Its compare-and-set: the task, only if still free.
pub const TAKE_TASK: &str =
    "UPDATE tasks SET owner = ?1, claimed_at = ?2 WHERE id = ?3 AND owner IS NULL";

/// Entry point of `scribe bench-worker`: the process exit code (0, 1 on
/// errors, 2 on a bad spec, [`DIED`](crate::kanban::DIED) for a kanban
/// worker that died on purpose).
pub fn main(spec: &str) -> i32 {
    let spec: WorkerSpec = match serde_json::from_str(spec) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bench-worker: bad spec: {e}");
            return 2;
        }
    };
    let report = if spec.role.as_deref() == Some("reader") {
        reader(&spec)
    } else if spec.workload == Workload::Kanban {
        crate::kanban::bench_role(&spec)
    } else {
        match spec.target {
            Target::Scribe => super::scribe_worker::run(&spec),
            Target::Direct | Target::Flock => direct(&spec),
        }
    };
    match serde_json::to_vec(&report) {
        Ok(bytes) if std::fs::write(&spec.out, &bytes).is_ok() => {}
        _ => {
            eprintln!("bench-worker: cannot write {}", spec.out);
            return 1;
        }
    }
    if !report.errors.is_empty() {
        for e in report.errors.iter().take(5) {
            eprintln!("bench-worker {}: {e}", spec.id);
        }
        1
    } else if report.died {
        i32::from(crate::kanban::DIED)
    } else {
        0
    }
}

/// A fixed 100-byte payload (the content does not matter, its size does).
pub fn payload(id: u32, n: u64) -> Vec<u8> {
    let mut p = vec![b'x'; ROW_BYTES];
    p[..8].copy_from_slice(&n.to_le_bytes());
    p[8..12].copy_from_slice(&id.to_le_bytes());
    p
}

/// Whether a run of `done` requests started at `started` should go on.
pub fn more(spec: &WorkerSpec, done: u64, started: Instant) -> bool {
    if spec.seconds > 0.0 {
        started.elapsed().as_secs_f64() < spec.seconds
    } else {
        done < spec.writes
    }
}

/// The runtime of a worker: one thread, as a typical caller has.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn direct(spec: &WorkerSpec) -> WorkerReport {
    let mut d = match Direct::open(&spec.db, spec.sync.name(), spec.target == Target::Flock) {
        Ok(d) => d,
        Err(e) => return failed(e),
    };
    let mut report = WorkerReport::default();
    ready_and_wait(spec);
    let mut lat = Vec::with_capacity(spec.writes as usize);
    let started = Instant::now();
    report.start_us = now_us();
    let cpu = cpu::self_us();
    let mut n = 0u64;
    while more(spec, n, started) {
        let t = Instant::now();
        let outcome = match spec.workload {
            Workload::Insert | Workload::Batch => {
                let rows = if spec.workload == Workload::Batch {
                    u64::from(spec.batch_size)
                } else {
                    1
                };
                d.transaction(|c| {
                    let mut st = c.prepare_cached(INSERT)?;
                    for k in 0..rows {
                        let row = n * rows + k;
                        st.execute(rusqlite::params![
                            spec.id,
                            row as i64,
                            payload(spec.id, row)
                        ])?;
                    }
                    Ok((rows, None))
                })
            }
            Workload::Claim => d.transaction(|c| {
                let id = free_task(c)?;
                c.prepare_cached("UPDATE tasks SET owner = ?1, claimed_at = ?2 WHERE id = ?3")?
                    .execute(rusqlite::params![spec.id, now_us() as i64, id])?;
                Ok((1, Some(id)))
            }),
            Workload::Session => d.transaction(|c| {
                let id = free_task(c)?;
                let changed = c.prepare_cached(TAKE_TASK)?.execute(rusqlite::params![
                    spec.id,
                    now_us() as i64,
                    id
                ])?;
                assert_eq!(changed, 1, "BEGIN IMMEDIATE holds the lock");
                c.prepare_cached(INSERT)?.execute(rusqlite::params![
                    spec.id,
                    id,
                    payload(spec.id, id as u64)
                ])?;
                Ok((1, Some(id)))
            }),
            Workload::Kanban => unreachable!("kanban has its own roles"),
        };
        match outcome {
            Ok((rows, claimed)) => {
                lat.push(t.elapsed().as_micros() as u32);
                report.ops += 1;
                report.rows += rows;
                report.claimed.extend(claimed);
            }
            Err(Failed::Conflict) => break,
            Err(Failed::Sql(e)) => {
                report.errors.push(e.to_string());
                break;
            }
        }
        n += 1;
    }
    report.end_us = now_us();
    report.cpu_us = cpu::self_us().saturating_sub(cpu);
    report.busy_retries = d.busy;
    report.latencies.push((spec.workload.name().into(), lat));
    report
}

/// A free task's id, inside the caller's transaction; `Conflict` when no
/// task is free (the worker is done).
fn free_task(c: &rusqlite::Connection) -> Result<i64, Failed> {
    use rusqlite::OptionalExtension as _;
    c.prepare_cached(FREE_TASK)?
        .query_row([], |r| r.get(0))
        .optional()?
        .ok_or(Failed::Conflict)
}

/// A report of a worker that could not start, saying why.
pub fn failed(why: String) -> WorkerReport {
    WorkerReport {
        errors: vec![why],
        ..WorkerReport::default()
    }
}

/// The paths of the worker's database, or why they cannot be made.
pub fn worker_paths(spec: &WorkerSpec) -> Result<Paths, String> {
    Paths::for_db(Path::new(&spec.db), None).map_err(|e| e.to_string())
}

/// A reader: point lookups through the reader library, first for a
/// second with no writers (the idle baseline), then until the stop file.
/// Every lookup finds one of the [`READ_ROWS`] rows the run put in first,
/// so both phases do the same work on the same data.
fn reader(spec: &WorkerSpec) -> WorkerReport {
    let mut report = WorkerReport::default();
    let reader = match worker_paths(spec)
        .and_then(|p| scribe_reader::Reader::open(&p).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let mut k = u64::from(spec.id) * 7919;
    let mut query = || {
        k = k.wrapping_mul(6364136223846793005).wrapping_add(1);
        let id = (k >> 33) % READ_ROWS + 1;
        reader
            .query(
                "SELECT length(payload) FROM bench WHERE id = ?1",
                &scribe_protocol::Params::Positional(vec![Value::Integer(id as i64)]),
            )
            .map(drop)
    };
    // Queries per second, CPU µs per query, errors.
    let phase = |until: &dyn Fn() -> bool,
                 query: &mut dyn FnMut() -> Result<(), scribe_reader::Error>| {
        let t = Instant::now();
        let cpu0 = cpu::self_us();
        let mut n = 0u64;
        let mut errors = Vec::new();
        // Look at the clock or the stop file only every 64 queries, so both
        // phases pay the same small overhead.
        while !n.is_multiple_of(64) || !until() {
            if let Err(e) = query() {
                errors.push(e.to_string());
                break;
            }
            n += 1;
        }
        let per_cpu = cpu::self_us().saturating_sub(cpu0) as f64 / n.max(1) as f64;
        (
            n as f64 / t.elapsed().as_secs_f64().max(1e-6),
            per_cpu,
            errors,
        )
    };
    let idle_end = Instant::now() + Duration::from_secs(1);
    let (idle, idle_cpu, e1) = phase(&|| Instant::now() >= idle_end, &mut query);
    ready_and_wait(spec);
    let stop = spec.stop.clone();
    let (busy, busy_cpu, e2) = phase(&|| Path::new(&stop).exists(), &mut query);
    report.errors.extend(e1.into_iter().chain(e2));
    report.reader_cpu_us = Some((idle_cpu, busy_cpu));
    report.reader_qps = Some((idle, busy));
    report
}
