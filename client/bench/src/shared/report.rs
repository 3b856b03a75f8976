//! Results for people (a table), programs (JSON lines) and eyes (SVG).

use std::fmt::Write as _;

use comfy_table::{presets, Table};
use serde::Serialize;

/// One run: one target, workload, process count and sync setting.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunResult {
    /// scribe, direct or flock.
    pub target: String,
    /// insert, claim, batch or kanban.
    pub workload: String,
    /// Writer processes.
    pub procs: u32,
    /// Writes each process kept in flight (scribe; 1 otherwise).
    pub in_flight: u32,
    /// full or normal.
    pub sync: String,
    /// Requests acknowledged per second.
    pub writes_per_sec: f64,
    /// Rows written per second.
    pub rows_per_sec: f64,
    /// Latency percentiles of acknowledged requests, microseconds.
    pub p50_us: u64,
    /// See `p50_us`.
    pub p99_us: u64,
    /// See `p50_us`.
    pub max_us: u64,
    /// BUSY retries (direct, flock) or client retries (scribe).
    pub busy_retries: u64,
    /// Requests refused because another process got there first.
    pub conflicts: u64,
    /// The database checked out afterwards.
    pub verified: bool,
    /// What the check found, when it failed.
    pub verify_detail: String,
    /// scribe only: mean batches per commit.
    pub mean_group: Option<f64>,
    /// scribe with `--synchronous full` only: mean writes made durable by
    /// one `fdatasync` (the group that matters there).
    pub writes_per_sync: Option<f64>,
    /// ... and the mean time of one `fdatasync`, µs.
    pub sync_mean_us: Option<u64>,
    /// With readers: their queries/s alone, then during the writes.
    pub reader_idle_qps: Option<f64>,
    /// See `reader_idle_qps`.
    pub reader_load_qps: Option<f64>,
    /// The readers' CPU per query, µs, alone and during the writes: a
    /// query that costs more under load was slowed by more than its share
    /// of the CPU.
    pub reader_cpu_us: Option<(f64, f64)>,
    /// Per operation kind (kanban): (kind, ops/s, p99 µs).
    pub kinds: Vec<(String, f64, u64)>,
    /// scribe rows: throughput over direct's in the same configuration.
    pub ratio_vs_direct: Option<f64>,
    /// CPU (user + system) of every process of the run, per acknowledged
    /// request, microseconds: the writers' and the arbiter's.
    pub cpu_us_per_write: f64,
    /// The writer processes' share of `cpu_us_per_write`.
    pub client_cpu_us: f64,
    /// The arbiter's share (scribe rows).
    pub arbiter_cpu_us: Option<f64>,
    /// The arbiter's share, thread by thread (socket, writer, syncer,
    /// checkpointer): where a request's CPU goes.
    pub arbiter_threads: Vec<(String, f64)>,
    /// Runs behind this row (`--rounds`): it is their median by writes/s.
    pub rounds: u32,
    /// The lowest and highest writes/s of those runs.
    pub writes_per_sec_range: Option<(f64, f64)>,
}

/// Percentile `p` (0–100) of sorted values.
pub fn percentile(sorted: &[u32], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    u64::from(sorted[i.min(sorted.len() - 1)])
}

fn us(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.1} ms", v as f64 / 1000.0)
    } else {
        format!("{v} µs")
    }
}

/// Processes, and writes in flight per process when more than one.
fn procs(r: &RunResult) -> String {
    if r.in_flight > 1 {
        format!("{}×{}", r.procs, r.in_flight)
    } else {
        r.procs.to_string()
    }
}

/// Writes/s, with the range of the runs when there were several.
fn writes(r: &RunResult) -> String {
    match r.writes_per_sec_range {
        Some((low, high)) => format!("{:.0} ({low:.0}–{high:.0})", r.writes_per_sec),
        None => format!("{:.0}", r.writes_per_sec),
    }
}

/// CPU per request, and the arbiter's share when there is one.
fn cpu(r: &RunResult) -> String {
    match r.arbiter_cpu_us {
        Some(a) => format!("{:.1} µs ({a:.1} arbiter)", r.cpu_us_per_write),
        None => format!("{:.1} µs", r.cpu_us_per_write),
    }
}

/// The table for people.
pub fn table(results: &[RunResult]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_HORIZONTAL_ONLY);
    t.set_header(vec![
        "workload",
        "sync",
        "procs",
        "target",
        "writes/s",
        "rows/s",
        "p50",
        "p99",
        "max",
        "CPU/write",
        "busy/retries",
        "scribe/direct",
        "verified",
    ]);
    for r in results {
        t.add_row(vec![
            r.workload.clone(),
            r.sync.clone(),
            procs(r),
            r.target.clone(),
            writes(r),
            format!("{:.0}", r.rows_per_sec),
            us(r.p50_us),
            us(r.p99_us),
            us(r.max_us),
            cpu(r),
            r.busy_retries.to_string(),
            r.ratio_vs_direct
                .map(|x| format!("{x:.2}×"))
                .unwrap_or_default(),
            if r.verified {
                "yes".into()
            } else {
                format!("NO: {}", r.verify_detail)
            },
        ]);
    }
    t
}

/// Writes per commit, and per sync with `--synchronous full`.
fn groups(r: &RunResult) -> String {
    match (r.mean_group, r.writes_per_sync) {
        (Some(g), Some(s)) => format!(
            "; {g:.1} writes per commit, {s:.1} per sync of {} µs",
            r.sync_mean_us.unwrap_or(0)
        ),
        (Some(g), None) => format!("; {g:.1} writes per commit"),
        _ => String::new(),
    }
}

/// Readers and kanban kinds, when present, as a second table.
pub fn extras(results: &[RunResult]) -> Option<Table> {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_HORIZONTAL_ONLY);
    t.set_header(vec![
        "workload",
        "sync",
        "procs",
        "target",
        "what",
        "per second",
        "p99",
    ]);
    let mut any = false;
    for r in results {
        if let (Some(idle), Some(load)) = (r.reader_idle_qps, r.reader_load_qps) {
            any = true;
            let cpu = r.reader_cpu_us;
            let each = |sep: &str, c: Option<f64>| {
                c.map_or(String::new(), |c| format!("{sep} CPU {c:.1} µs each"))
            };
            t.add_row(vec![
                r.workload.clone(),
                r.sync.clone(),
                r.procs.to_string(),
                r.target.clone(),
                format!(
                    "reader queries (idle {idle:.0}/s{})",
                    each(",", cpu.map(|c| c.0))
                ),
                format!(
                    "{load:.0} ({:.0}% of idle{})",
                    100.0 * load / idle.max(1e-9),
                    each(";", cpu.map(|c| c.1))
                ),
                String::new(),
            ]);
        }
        if !r.arbiter_threads.is_empty() {
            any = true;
            let by: Vec<String> = r
                .arbiter_threads
                .iter()
                .filter(|(_, us)| *us >= 0.05)
                .map(|(n, us)| format!("{} {us:.1}", n.trim_start_matches("scribe-")))
                .collect();
            t.add_row(vec![
                r.workload.clone(),
                r.sync.clone(),
                procs(r),
                r.target.clone(),
                format!(
                    "CPU per write: client {:.1} µs; arbiter by thread (µs){}",
                    r.client_cpu_us,
                    groups(r)
                ),
                by.join(", "),
                String::new(),
            ]);
        }
        for (kind, rate, p99) in &r.kinds {
            any = true;
            t.add_row(vec![
                r.workload.clone(),
                r.sync.clone(),
                r.procs.to_string(),
                r.target.clone(),
                kind.clone(),
                format!("{rate:.1}"),
                us(*p99),
            ]);
        }
    }
    any.then_some(t)
}

/// A plot of throughput, p99 and max latency against process count, one
/// line per target, one row of panels per (workload, sync): the max is
/// where direct SQLite's stalls on the file lock show. Hand-written SVG: a
/// few polylines need no plotting library.
pub fn svg(results: &[RunResult]) -> String {
    let mut groups: Vec<(String, String)> = Vec::new();
    for r in results {
        let g = (r.workload.clone(), r.sync.clone());
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let (pw, ph, margin) = (420.0, 260.0, 60.0);
    let width = 3.0 * (pw + margin) + margin;
    let height = groups.len() as f64 * (ph + margin * 1.5) + margin;
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"##
    );
    let _ = write!(out, r##"<rect width="100%" height="100%" fill="white"/>"##);
    let colors = [
        ("scribe", "#1b7f3b"),
        ("direct", "#c0392b"),
        ("flock", "#2c6fbb"),
    ];
    for (gi, (workload, sync)) in groups.iter().enumerate() {
        let rows: Vec<&RunResult> = results
            .iter()
            .filter(|r| &r.workload == workload && &r.sync == sync)
            .collect();
        let procs: Vec<u32> = {
            let mut p: Vec<u32> = rows.iter().map(|r| r.procs).collect();
            p.sort_unstable();
            p.dedup();
            p
        };
        let oy = margin + gi as f64 * (ph + margin * 1.5);
        for (pi, (title, value)) in [
            (
                "writes/s",
                Box::new(|r: &RunResult| r.writes_per_sec) as Box<dyn Fn(&RunResult) -> f64>,
            ),
            (
                "p99 latency (ms, log)",
                Box::new(|r: &RunResult| (r.p99_us.max(1) as f64 / 1000.0).log10()),
            ),
            (
                "max latency (ms, log)",
                Box::new(|r: &RunResult| (r.max_us.max(1) as f64 / 1000.0).log10()),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let ox = margin + pi as f64 * (pw + margin);
            let vals: Vec<f64> = rows.iter().map(|r| value(r)).collect();
            let (lo, hi) = if pi == 0 {
                (0.0, vals.iter().copied().fold(1.0, f64::max) * 1.1)
            } else {
                let lo = vals
                    .iter()
                    .copied()
                    .fold(f64::INFINITY, f64::min)
                    .floor()
                    .min(-1.0);
                let hi = vals
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max)
                    .ceil()
                    .max(lo + 1.0);
                (lo, hi)
            };
            let x = |p: u32| {
                let i = procs.iter().position(|&q| q == p).unwrap_or(0) as f64;
                ox + if procs.len() > 1 {
                    i / (procs.len() - 1) as f64 * pw
                } else {
                    pw / 2.0
                }
            };
            let y = |v: f64| oy + ph - (v - lo) / (hi - lo) * ph;
            let _ = write!(
                out,
                r##"<rect x="{ox}" y="{oy}" width="{pw}" height="{ph}" fill="none" stroke="#999"/><text x="{ox}" y="{}" font-weight="bold">{workload}, synchronous={sync}: {title}</text>"##,
                oy - 8.0
            );
            for p in &procs {
                let _ = write!(
                    out,
                    r##"<text x="{}" y="{}" text-anchor="middle">{p}</text>"##,
                    x(*p),
                    oy + ph + 16.0
                );
            }
            let _ = write!(
                out,
                r##"<text x="{}" y="{}" text-anchor="middle">processes</text>"##,
                ox + pw / 2.0,
                oy + ph + 32.0
            );
            for k in 0..=4 {
                let v = lo + (hi - lo) * f64::from(k) / 4.0;
                let label = if pi == 0 {
                    format!("{v:.0}")
                } else {
                    format!("{:.3}", 10f64.powf(v))
                };
                let _ = write!(
                    out,
                    r##"<text x="{}" y="{}" text-anchor="end">{label}</text><line x1="{ox}" x2="{}" y1="{}" y2="{}" stroke="#eee"/>"##,
                    ox - 4.0,
                    y(v) + 4.0,
                    ox + pw,
                    y(v),
                    y(v)
                );
            }
            for (ci, (target, color)) in colors.iter().enumerate() {
                let mut pts: Vec<(u32, f64)> = rows
                    .iter()
                    .filter(|r| r.target == *target)
                    .map(|r| (r.procs, value(r)))
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                pts.sort_by_key(|p| p.0);
                let line: Vec<String> = pts
                    .iter()
                    .map(|(p, v)| format!("{:.1},{:.1}", x(*p), y(*v)))
                    .collect();
                let _ = write!(
                    out,
                    r##"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"##,
                    line.join(" ")
                );
                for (p, v) in &pts {
                    let _ = write!(
                        out,
                        r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"##,
                        x(*p),
                        y(*v)
                    );
                }
                let _ = write!(
                    out,
                    r##"<text x="{}" y="{}" fill="{color}">{target}</text>"##,
                    ox + 8.0,
                    oy + 16.0 + 14.0 * ci as f64
                );
            }
        }
    }
    out.push_str("</svg>\n");
    out
}
