//! Loaders: processes that write tagged rows one at a time and log what
//! was acknowledged, and the checks that every acknowledged row is there.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::{Env, WORKER};

impl Env {
    /// Spawns a `test-worker load TAG ROWS LOG` process; returns its index
    /// and the log path.
    pub fn loader(&mut self, tag: &str, rows: u64) -> (usize, PathBuf) {
        let log = self.dir.path().join(format!("{tag}.acked"));
        let mut c = self.command(WORKER);
        c.arg("load").arg(tag).arg(rows.to_string()).arg(&log);
        (self.spawn(c), log)
    }

    /// Waits (bounded) until every loader's log has an acknowledged row, so
    /// that what follows happens under load, whatever the machine's speed.
    pub fn wait_loaded(&self, logs: &[&Path]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for log in logs {
            while std::fs::read_to_string(log).map_or(true, |t| t.is_empty()) {
                assert!(
                    Instant::now() < deadline,
                    "{} acknowledged nothing",
                    log.display()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Checks that every acknowledged row in `log` is in the database once.
    pub fn assert_acked_present(&self, tag: &str, log: &Path) -> usize {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let acked: Vec<i64> = text.lines().map(|l| l.parse().expect("log line")).collect();
        let conn = self.sqlite();
        for i in &acked {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM t WHERE tag = ?1 AND i = ?2",
                    rusqlite::params![tag, i],
                    |r| r.get(0),
                )
                .expect("query");
            assert_eq!(n, 1, "acknowledged row {tag}/{i} is missing");
        }
        acked.len()
    }
}
