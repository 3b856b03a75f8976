//! Many real processes writing and reading one file at once.

use std::time::Duration;

use crate::harness::{stderr, stdout, Env, SCHEMA, WORKER};

const WRITERS: usize = 8;
const ROWS: i64 = 300;

#[test]
fn eight_writer_processes_and_a_reader_share_one_database() {
    let mut env = Env::new();
    env.start_arbiter(&[]);
    env.scribe_ok(&["exec", SCHEMA]);

    let stop = env.dir.path().join("stop-reading");
    let mut reader = env.command(WORKER);
    reader.arg("read").arg(&stop);
    let reader = env.spawn(reader);
    let writers: Vec<usize> = (0..WRITERS)
        .map(|w| {
            let mut c = env.command(WORKER);
            c.args(["write", &format!("w{w}"), &ROWS.to_string()]);
            env.spawn(c)
        })
        .collect();
    for w in writers {
        let out = env.wait(w, Duration::from_secs(120));
        assert!(
            out.status.success(),
            "writer failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(stdout(&out).trim(), format!("ok={ROWS} errors=0"));
    }
    std::fs::write(&stop, b"").unwrap();
    let out = env.wait(reader, Duration::from_secs(30));
    assert!(out.status.success(), "reader failed: {}", stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("errors=0"), "{report}");
    assert!(
        !report.contains("queries=0 "),
        "the reader never read: {report}"
    );

    let total = WRITERS as i64 * ROWS;
    assert_eq!(env.count("SELECT count(*) FROM t"), total);
    assert_eq!(
        env.count("SELECT count(*) FROM (SELECT DISTINCT tag, i FROM t)"),
        total
    );
    for w in 0..WRITERS {
        let sql = format!(
            "SELECT count(*) FROM t WHERE tag = 'w{w}' AND i BETWEEN 0 AND {}",
            ROWS - 1
        );
        assert_eq!(env.count(&sql), ROWS, "writer w{w}");
    }

    let status: serde_json::Value =
        serde_json::from_str(&env.scribe_ok(&["--json", "status"])).unwrap();
    let mean = status["mean_group"].as_f64().unwrap();
    assert!(mean > 1.0, "no group commit happened: mean group {mean}");
    assert_eq!(status["writes"].as_u64().unwrap(), total as u64 + 1);
}

/// Batches that fail halfway, mixed into the same groups as batches that
/// succeed (8 in flight per process, so a group holds several): each
/// failing batch leaves nothing, each other commits once. A group runs
/// with no savepoint first and again with them when a batch fails; this
/// is that path under real concurrency.
#[test]
fn batches_failing_halfway_in_shared_groups_leave_nothing_and_spare_the_rest() {
    const PROCS: usize = 4;
    const BATCHES: i64 = 600;
    let mut env = Env::new();
    env.start_arbiter(&["--synchronous", "normal"]);
    env.scribe_ok(&["exec", SCHEMA]);
    let workers: Vec<usize> = (0..PROCS)
        .map(|w| {
            let mut c = env.command(WORKER);
            c.args(["mixed", &format!("m{w}"), &BATCHES.to_string(), "8"]);
            env.spawn(c)
        })
        .collect();
    let failing = (BATCHES + 2) / 3;
    for w in workers {
        let out = env.wait(w, Duration::from_secs(120));
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(out.status.success(), "{said}");
        assert_eq!(
            stdout(&out).trim(),
            format!("ok={} failed={failing} wrong=0", BATCHES - failing)
        );
    }
    let kept = PROCS as i64 * (BATCHES - failing);
    assert_eq!(env.count("SELECT count(*) FROM t"), kept);
    assert_eq!(env.count("SELECT count(*) FROM t WHERE i % 3 = 0"), 0);
    assert_eq!(
        env.count("SELECT count(*) FROM (SELECT DISTINCT tag, i FROM t)"),
        kept
    );
    let status: serde_json::Value =
        serde_json::from_str(&env.scribe_ok(&["--json", "status"])).unwrap();
    let mean = status["mean_group"].as_f64().unwrap();
    assert!(mean > 1.0, "no group held two batches: mean group {mean}");
}
