//! Kill -9 torture: no acknowledged write is ever lost, doubled or
//! half-applied, with the arbiter killed at random moments.
//!
//! CI runs a short version; `SCRIBE_TORTURE_SECS=300` runs it longer.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{stderr, stdout, Env, WORKER};

const WRITERS: usize = 8;

fn seconds() -> u64 {
    std::env::var("SCRIBE_TORTURE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12)
}

/// A pseudo-random number in [lo, hi), different each call.
fn between(lo: u64, hi: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    lo + h.finish() % (hi - lo)
}

fn torture(synchronous: &str) {
    let mut env = Env::new();
    std::fs::write(
        &env.paths().config,
        format!("synchronous = {synchronous}\n"),
    )
    .unwrap();
    env.sqlite()
        .execute_batch("CREATE TABLE a(id TEXT NOT NULL); CREATE TABLE b(id TEXT NOT NULL);")
        .unwrap();
    let stop = env.dir.path().join("stop");
    let writers: Vec<(usize, std::path::PathBuf)> = (0..WRITERS)
        .map(|w| {
            let log = env.dir.path().join(format!("w{w}.acked"));
            let mut c = env.command(WORKER);
            c.args(["torture", &format!("w{w}")]).arg(&log).arg(&stop);
            (env.spawn(c), log)
        })
        .collect();

    let run_for = Duration::from_secs(seconds());
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() < run_for {
        std::thread::sleep(Duration::from_millis(between(150, 700)));
        if let Some(pid) = env.arbiter_pid() {
            if kill(Pid::from_raw(pid as i32), Signal::SIGKILL).is_ok() {
                kills += 1;
            }
        }
    }
    std::fs::write(&stop, b"").unwrap();
    let mut totals = [0u64; 5];
    for (i, _) in &writers {
        let out = env.wait(*i, Duration::from_secs(90));
        assert!(out.status.success(), "{}", stderr(&out));
        for (k, field) in ["acked", "failed", "retries", "replays", "reconnects"]
            .iter()
            .enumerate()
        {
            let v: u64 = stdout(&out)
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{field}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {field} in {}", stdout(&out)));
            totals[k] += v;
        }
    }

    let conn = env.sqlite();
    let ids = |table: &str| -> Vec<String> {
        let mut st = conn.prepare(&format!("SELECT id FROM {table}")).unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let (a, b) = (ids("a"), ids("b"));
    let (set_a, set_b): (HashSet<&String>, HashSet<&String>) =
        (a.iter().collect(), b.iter().collect());
    let doubled = (a.len() - set_a.len()) + (b.len() - set_b.len());
    let half_applied = set_a.symmetric_difference(&set_b).count();
    let mut acked = 0;
    let mut lost = 0;
    for (_, log) in &writers {
        for id in std::fs::read_to_string(log).unwrap_or_default().lines() {
            acked += 1;
            if !set_a.contains(&id.to_owned()) || !set_b.contains(&id.to_owned()) {
                lost += 1;
            }
        }
    }
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    eprintln!(
        "torture synchronous={synchronous} seconds={} kills={kills} acknowledged={acked} \
         failed={} retries={} replays={} reconnects={} rows={} lost={lost} doubled={doubled} \
         half_applied={half_applied} integrity={integrity}",
        run_for.as_secs(),
        totals[1],
        totals[2],
        totals[3],
        totals[4],
        set_a.len()
    );
    assert!(kills >= 10, "only {kills} kills");
    assert!(acked > 0);
    assert_eq!(
        totals[0], acked as u64,
        "every acknowledged write is logged"
    );
    assert_eq!(lost, 0, "acknowledged writes lost");
    assert_eq!(doubled, 0, "writes applied twice");
    assert_eq!(half_applied, 0, "batches applied in part");
    assert_eq!(integrity, "ok");
}

#[test]
fn kill_9_torture_with_synchronous_full() {
    torture("full");
}

#[test]
fn kill_9_torture_with_synchronous_normal() {
    torture("normal");
}
