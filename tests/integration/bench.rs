//! `scribe bench` and `scribe demo` end to end, with tiny settings. These
//! check behaviour (well-formed output, verified databases, invariants),
//! never speed.

use std::time::Duration;

use crate::harness::{run, stderr, stdout, Env, SCRIBE};

const FIELDS: [&str; 10] = [
    "target",
    "workload",
    "procs",
    "sync",
    "writes_per_sec",
    "p50_us",
    "p99_us",
    "max_us",
    "busy_retries",
    "verified",
];

fn bench(env: &Env, args: &[&str]) -> Vec<serde_json::Value> {
    let mut c = env.command(SCRIBE);
    c.arg("bench")
        .args(args)
        .arg("--json")
        .arg("--dir")
        .arg(env.dir.path());
    let out = run(c, Duration::from_secs(240));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn bench_json_is_well_formed_and_every_target_verified() {
    let env = Env::new();
    let rows = bench(
        &env,
        &[
            "--procs",
            "1,2",
            "--writes",
            "20",
            "--workloads",
            "insert,claim,batch",
            "--batch-size",
            "10",
            "--sync",
            "normal",
            "--readers",
            "1",
        ],
    );
    assert_eq!(rows.len(), 2 * 3 * 3, "procs × workloads × targets");
    for r in &rows {
        for f in FIELDS {
            assert!(!r[f].is_null(), "{f} missing in {r}");
        }
        assert_eq!(r["verified"], true, "{r}");
        assert!(r["writes_per_sec"].as_f64().unwrap() > 0.0);
    }
    for t in ["scribe", "direct", "flock"] {
        assert!(rows.iter().any(|r| r["target"] == t));
    }
    assert!(rows
        .iter()
        .filter(|r| r["target"] == "scribe")
        .all(|r| r["ratio_vs_direct"].as_f64().is_some()));

    // Readers: an idle baseline and a figure under load.
    let rows = bench(
        &env,
        &[
            "--procs",
            "1",
            "--writes",
            "50",
            "--targets",
            "scribe",
            "--readers",
            "1",
        ],
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["verified"], true);
    assert!(rows[0]["reader_idle_qps"].as_f64().unwrap() > 0.0);
    assert!(rows[0]["reader_load_qps"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_kanban_holds_its_invariants_on_both_targets() {
    let env = Env::new();
    let svg = env.dir.path().join("plot.svg");
    let mut c = env.command(SCRIBE);
    c.args([
        "bench",
        "--procs",
        "2",
        "--workloads",
        "kanban",
        "--seconds",
        "3",
    ])
    .args(["--targets", "scribe,direct", "--json", "--svg"])
    .arg(&svg)
    .arg("--dir")
    .arg(env.dir.path());
    let out = run(c, Duration::from_secs(240));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let rows: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r["verified"], true, "{r}");
        let kinds: Vec<&str> = r["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k[0].as_str().unwrap())
            .collect();
        assert!(
            kinds.contains(&"claim") && kinds.contains(&"complete"),
            "{kinds:?}"
        );
    }
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.starts_with("<svg") && plot.contains("polyline"));
}

#[test]
fn the_demo_ends_with_every_invariant_holding() {
    let env = Env::new();
    let dir = env.dir.path().join("demo");
    let mut c = env.command(SCRIBE);
    c.args(["demo", "--seconds", "4", "--workers", "4", "--dir"])
        .arg(&dir);
    let out = run(c, Duration::from_secs(120));
    let said = stdout(&out);
    assert!(out.status.success(), "{said}{}", stderr(&out));
    for k in ["K1", "K2", "K3", "K4", "K5", "K6"] {
        assert!(
            said.contains(&format!("✓ {k}:")),
            "{k} not shown holding:\n{said}"
        );
    }
    assert!(!said.contains('✗'), "{said}");
    assert!(said.contains("scribe --db"), "tells how to look inside");
    // It stopped its arbiter; the board is readable without it.
    let db = dir.join("kanban.db");
    let rows = env.scribe_ok(&[
        "--db",
        db.to_str().unwrap(),
        "--no-autostart",
        "--json",
        "query",
        "SELECT count(*) AS n FROM tasks WHERE status = 'done'",
    ]);
    let n: serde_json::Value = serde_json::from_str(&rows).unwrap();
    assert!(n[0]["n"].as_i64().unwrap() > 0, "{rows}");
}
