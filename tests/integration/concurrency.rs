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
