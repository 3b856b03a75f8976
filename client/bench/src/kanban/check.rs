//! The invariants K1–K6 of the kanban workload, checked on the database
//! and the processes' reports at the end of a run (see
//! `docs/kanban.md`).

use std::path::Path;
use std::time::Duration;

use super::Outcome;

/// K1–K6 on the final database, plus the processes' own reports.
pub fn check(db: &Path, outcome: &Outcome) -> Vec<(String, bool, String)> {
    let c =
        match rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        {
            Ok(c) => c,
            Err(e) => return vec![("open".into(), false, e.to_string())],
        };
    let _ = c.busy_timeout(Duration::from_secs(5));
    let count = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap_or(-1) };
    let zero = |name: &str, what: &str, sql: &str| {
        let n = count(sql);
        (
            name.to_owned(),
            n == 0,
            if n == 0 {
                what.to_owned()
            } else {
                format!("{what}: {n} found")
            },
        )
    };
    let live: Vec<&String> = outcome
        .reports
        .iter()
        .flat_map(|(_, r)| &r.violations)
        .collect();
    let errors: Vec<&String> = outcome
        .reports
        .iter()
        .flat_map(|(_, r)| &r.errors)
        .collect();
    let completed: Vec<&String> = outcome
        .reports
        .iter()
        .flat_map(|(_, r)| &r.completed)
        .collect();
    let missing = completed
        .iter()
        .filter(|t| {
            c.query_row(
                "SELECT count(*) FROM tasks t WHERE t.id = ?1 AND t.status = 'done'
                 AND EXISTS (SELECT 1 FROM task_events e WHERE e.task_id = t.id AND e.kind = 'completed')",
                [t.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_or(0)
                != 1
        })
        .count();
    let runs = count("SELECT count(*) FROM task_runs");
    let claimed = count("SELECT count(*) FROM task_events WHERE kind = 'claimed'");
    let mut k1 = zero(
        "K1",
        "never two live runs for a task",
        "SELECT count(*) FROM (SELECT task_id FROM task_runs WHERE ended_at IS NULL GROUP BY task_id HAVING count(*) > 1)",
    );
    let k1_live: Vec<&&String> = live.iter().filter(|v| v.starts_with("K1")).collect();
    if !k1_live.is_empty() {
        k1 = (
            "K1".into(),
            false,
            format!("seen during the run: {k1_live:?}"),
        );
    }
    let mut k2 = zero(
        "K2",
        "running exactly when claim_lock and current_run_id are set",
        "SELECT count(*) FROM tasks WHERE (status = 'running') != (claim_lock IS NOT NULL AND current_run_id IS NOT NULL)",
    );
    let k2_live: Vec<&&String> = live.iter().filter(|v| v.starts_with("K2")).collect();
    if !k2_live.is_empty() {
        k2 = (
            "K2".into(),
            false,
            format!("seen during the run: {k2_live:?}"),
        );
    }
    // A failed query counts -1: report it as a violation, never as zero.
    let twice = [
        count("SELECT count(*) FROM (SELECT task_id FROM task_runs WHERE outcome = 'completed' GROUP BY task_id HAVING count(*) > 1)"),
        count("SELECT count(*) FROM (SELECT claim_lock FROM task_runs GROUP BY claim_lock HAVING count(*) > 1)"),
    ]
    .iter()
    .map(|&n| if n < 0 { 1 } else { n })
    .sum::<i64>();
    let caught = outcome.sum(|r| r.caught);
    let late_accepted = errors
        .iter()
        .filter(|e| e.contains("late complete") || e.contains("completed twice"))
        .count();
    let k3 = (
        "K3".into(),
        twice == 0 && late_accepted == 0,
        format!(
            "no claim granted twice, no task completed twice; {caught} late or repeated completes and stale heartbeats refused{}",
            if twice + late_accepted as i64 > 0 { format!(" — VIOLATED: {twice} in the file, {late_accepted} accepted") } else { String::new() }
        ),
    );
    let k4 = (
        "K4".into(),
        missing == 0 && runs == claimed && runs >= 0,
        format!(
            "{} acknowledged completes all done with a completed event ({missing} missing); {claimed} claimed events for {runs} runs",
            completed.len()
        ),
    );
    let k5 = zero(
        "K5",
        "no child claimed before all its parents completed",
        "SELECT count(*) FROM task_events ce JOIN task_links l ON l.child_id = ce.task_id
         WHERE ce.kind = 'claimed' AND NOT EXISTS (SELECT 1 FROM task_events pe
           WHERE pe.task_id = l.parent_id AND pe.kind = 'completed' AND pe.id < ce.id)",
    );
    let integrity: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| e.to_string());
    let running = count("SELECT count(*) FROM tasks WHERE status = 'running'");
    let k6 = (
        "K6".into(),
        integrity == "ok" && running == 0,
        // `running` is -1 when the query failed: not 0, so K6 fails.
        format!("integrity_check {integrity}; {running} tasks running at the end"),
    );
    let clean = (
        "processes".into(),
        errors
            .iter()
            .all(|e| !(e.contains("late complete") || e.contains("completed twice")))
            && errors.is_empty(),
        if errors.is_empty() {
            "no process reported an error".into()
        } else {
            format!("errors: {errors:?}")
        },
    );
    vec![k1, k2, k3, k4, k5, k6, clean]
}
