//! The kanban processes: creators, workers, a dispatcher, a dashboard.

use std::path::Path;
use std::time::{Duration, Instant};

use scribe_protocol::Value;

use super::board::{Board, Refusal};
use super::ops;
use super::worker::worker;
use crate::shared::procs::ready_and_wait;
use crate::shared::spec::{now_us, WorkerReport, WorkerSpec};

/// How long a claim lasts without a heartbeat.
pub const LEASE_MS: i64 = 1000;
/// How often a working worker heartbeats.
pub const HEARTBEAT: Duration = Duration::from_millis(100);

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A small, fast, seeded generator (xorshift64*): the workload needs
/// variety, not cryptography.
pub struct Rng(u64);

impl Rng {
    /// Seeded from the process and the clock.
    pub fn new(salt: u64) -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Rng(
            (t ^ (u64::from(std::process::id()) << 32) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                | 1,
        )
    }

    /// Next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }

    /// True with probability `p` percent.
    pub fn percent(&mut self, p: u64) -> bool {
        self.range(0, 100) < p
    }
}

/// One role's process: its spec, its board, what it reports.
pub(super) struct Ctx<'a> {
    pub(super) spec: &'a WorkerSpec,
    pub(super) board: Board,
    pub(super) report: WorkerReport,
    pub(super) rng: Rng,
}

impl Ctx<'_> {
    pub(super) fn stopped(&self) -> bool {
        Path::new(&self.spec.stop).exists()
    }

    fn record(&mut self, kind: &str, micros: u32) {
        match self.report.latencies.iter_mut().find(|(k, _)| k == kind) {
            Some((_, v)) => v.push(micros),
            None => self.report.latencies.push((kind.to_owned(), vec![micros])),
        }
        self.report.ops += 1;
    }

    pub(super) fn write(
        &mut self,
        kind: &str,
        statements: Vec<scribe_protocol::Statement>,
    ) -> Result<Vec<scribe_protocol::StatementResult>, Refusal> {
        let out = self.board.write(statements);
        match &out {
            Ok((_, micros)) => self.record(kind, *micros),
            Err(Refusal::Error(e)) => self.report.errors.push(format!("{kind}: {e}")),
            Err(Refusal::Conflict) => {}
        }
        out.map(|(r, _)| r)
    }
}

/// Runs the role named in `spec.role`.
pub fn run(spec: &WorkerSpec, scribe: bool) -> WorkerReport {
    let board = match Board::open(&spec.db, scribe, spec.sync.name()) {
        Ok(b) => b,
        Err(e) => {
            return WorkerReport {
                errors: vec![e],
                ..WorkerReport::default()
            }
        }
    };
    let mut ctx = Ctx {
        spec,
        board,
        report: WorkerReport::default(),
        rng: Rng::new(u64::from(spec.id)),
    };
    ready_and_wait(spec);
    ctx.report.start_us = now_us();
    let cpu = crate::shared::cpu::self_us();
    match spec.role.as_deref() {
        Some("creator") => creator(&mut ctx),
        Some("worker") => worker(&mut ctx),
        Some("dispatcher") => dispatcher(&mut ctx),
        Some("dashboard") => dashboard(&mut ctx),
        other => ctx.report.errors.push(format!("unknown role {other:?}")),
    }
    ctx.report.end_us = now_us();
    ctx.report.cpu_us = crate::shared::cpu::self_us().saturating_sub(cpu);
    ctx.report.busy_retries = ctx.board.retries();
    ctx.report
}

/// Bursts of 1–5 tasks every ~200 ms; 30% with 1–2 parents; 5% reuse an
/// idempotency key (and must create nothing).
fn creator(ctx: &mut Ctx<'_>) {
    let mut recent: Vec<String> = Vec::new();
    let mut n = 0u64;
    while !ctx.stopped() {
        for _ in 0..ctx.rng.range(1, 6) {
            let id = format!("c{}-{n}", ctx.spec.id);
            n += 1;
            let mut parents: Vec<String> = if !recent.is_empty() && ctx.rng.percent(30) {
                (0..ctx.rng.range(1, 3))
                    .map(|_| recent[ctx.rng.range(0, recent.len() as u64) as usize].clone())
                    .collect()
            } else {
                Vec::new()
            };
            parents.sort();
            parents.dedup();
            let reuse = !recent.is_empty() && ctx.rng.percent(5);
            let key = if reuse {
                format!(
                    "key-{}",
                    recent[ctx.rng.range(0, recent.len() as u64) as usize]
                )
            } else {
                format!("key-{id}")
            };
            let prio = ctx.rng.range(0, 10) as i64;
            let batch = ops::create(&id, &format!("task {id}"), prio, &parents, &key, now_ms());
            if let Ok(r) = ctx.write("create", batch) {
                if r[0].rows_affected == 1 {
                    ctx.report.created += 1;
                    recent.push(id);
                    if recent.len() > 30 {
                        recent.remove(0);
                    }
                } else if reuse {
                    ctx.report.deduplicated += 1;
                } else {
                    ctx.report.errors.push(format!("task {id} was not created"));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(ctx.rng.range(150, 250)));
    }
}

/// Every ~250 ms, takes back tasks whose claim expired. After the stop it
/// keeps going until the workers are gone and nothing is running.
fn dispatcher(ctx: &mut Ctx<'_>) {
    let done_file = format!("{}.workers-done", ctx.spec.stop);
    loop {
        let expired = match ctx.board.read(
            "SELECT id, claim_lock FROM tasks WHERE status = 'running' AND claim_expires < :now",
            vec![(":now".into(), Value::Integer(now_ms()))],
        ) {
            Ok(rows) => rows,
            Err(e) => {
                ctx.report.errors.push(e);
                return;
            }
        };
        for row in expired {
            if let [Value::Text(task), Value::Text(lock)] = row.as_slice() {
                match ctx.write("reclaim", ops::reclaim(task, lock, now_ms())) {
                    Ok(_) => ctx.report.reclaims += 1,
                    Err(Refusal::Conflict) => ctx.report.conflicts += 1,
                    Err(Refusal::Error(_)) => {}
                }
            }
        }
        if Path::new(&done_file).exists() {
            let running = ctx.board.read(
                "SELECT count(*) FROM tasks WHERE status = 'running'",
                Vec::new(),
            );
            if matches!(running.as_deref(), Ok([row]) if row.first() == Some(&Value::Integer(0))) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every ~500 ms: counts by status, new events, and the live invariants
/// K1 (one live run per task) and K2 (running ⇔ claim and run set).
fn dashboard(ctx: &mut Ctx<'_>) {
    let bar = if ctx.spec.progress {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} done  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let done_file = format!("{}.workers-done", ctx.spec.stop);
    let mut cursor = 0i64;
    loop {
        let t = Instant::now();
        let counts = ctx
            .board
            .read(
                "SELECT status, count(*) FROM tasks GROUP BY status",
                Vec::new(),
            )
            .unwrap_or_default();
        let get = |s: &str| {
            counts
                .iter()
                .find(|r| r.first() == Some(&Value::Text(s.into())))
                .and_then(|r| match r.get(1) {
                    Some(Value::Integer(n)) => Some(*n as u64),
                    _ => None,
                })
                .unwrap_or(0)
        };
        let total: u64 = ["todo", "ready", "running", "done", "blocked"]
            .iter()
            .map(|s| get(s))
            .sum();
        let new_events = ctx
            .board
            .read(
                "SELECT count(*), max(id) FROM task_events WHERE id > :c",
                vec![(":c".into(), Value::Integer(cursor))],
            )
            .unwrap_or_default();
        if let Some([Value::Integer(_), Value::Integer(max)]) =
            new_events.first().map(Vec::as_slice)
        {
            cursor = *max;
        }
        for (name, sql) in [
            ("K1", "SELECT count(*) FROM (SELECT task_id FROM task_runs WHERE ended_at IS NULL GROUP BY task_id HAVING count(*) > 1)"),
            ("K2", "SELECT count(*) FROM tasks WHERE (status = 'running') != (claim_lock IS NOT NULL AND current_run_id IS NOT NULL)"),
        ] {
            match ctx.board.read(sql, Vec::new()).as_deref() {
                Ok([row]) if row.first() == Some(&Value::Integer(0)) => {}
                other => ctx.report.violations.push(format!("{name}: {other:?}")),
            }
        }
        ctx.record("dashboard", t.elapsed().as_micros() as u32);
        bar.set_length(total);
        bar.set_position(get("done"));
        bar.set_message(format!(
            "running {} ready {} todo {} blocked {}",
            get("running"),
            get("ready"),
            get("todo"),
            get("blocked")
        ));
        if Path::new(&done_file).exists() {
            bar.finish_and_clear();
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
