//! The kanban operations, each one batch (see `docs/kanban.md`):
//! statements run in order, and a compare-and-set marked `expect_rows`
//! stops the whole batch when another process got there first.

use scribe_protocol::{Statement, Value};

fn named(sql: &str, params: &[(&str, Value)]) -> Statement {
    Statement::new(sql).named(
        params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// Creates a task (`ready`, or `todo` while a parent is not done), its
/// links and its `created` event — unless a task with the same
/// idempotency key exists, in which case nothing is written.
pub fn create(
    id: &str,
    title: &str,
    priority: i64,
    parents: &[String],
    key: &str,
    now: i64,
) -> Vec<Statement> {
    let p1 = parents.first().map_or(Value::Null, |p| text(p));
    let p2 = parents.get(1).map_or(Value::Null, |p| text(p));
    let mut out = vec![named(
        "INSERT INTO tasks(id, title, body, status, priority, created_at, idempotency_key)
         SELECT :id, :title, 'generated', CASE WHEN EXISTS
             (SELECT 1 FROM tasks p WHERE p.id IN (:p1, :p2) AND p.status != 'done')
           THEN 'todo' ELSE 'ready' END, :prio, :now, :key
         WHERE NOT EXISTS (SELECT 1 FROM tasks WHERE idempotency_key = :key)",
        &[
            (":id", text(id)),
            (":title", text(title)),
            (":p1", p1),
            (":p2", p2),
            (":prio", Value::Integer(priority)),
            (":now", Value::Integer(now)),
            (":key", text(key)),
        ],
    )];
    for p in parents {
        out.push(named(
            "INSERT INTO task_links(parent_id, child_id)
             SELECT :p, :id WHERE EXISTS (SELECT 1 FROM tasks WHERE id = :id)",
            &[(":p", text(p)), (":id", text(id))],
        ));
    }
    out.push(named(
        "INSERT INTO task_events(task_id, kind, created_at)
         SELECT :id, 'created', :now WHERE EXISTS (SELECT 1 FROM tasks WHERE id = :id)",
        &[(":id", text(id)), (":now", Value::Integer(now))],
    ));
    out
}

/// Claims a ready task: compare-and-set on its state, a run, the run's id
/// on the task, a `claimed` event. Statement 1 returns the run id.
pub fn claim(task: &str, worker: &str, lock: &str, now: i64, lease_ms: i64) -> Vec<Statement> {
    vec![
        named(
            "UPDATE tasks SET status = 'running', claim_lock = :lock, claim_expires = :exp,
                 last_heartbeat_at = :now
             WHERE id = :t AND status = 'ready' AND claim_lock IS NULL",
            &[
                (":lock", text(lock)),
                (":exp", Value::Integer(now + lease_ms)),
                (":now", Value::Integer(now)),
                (":t", text(task)),
            ],
        )
        .expect_rows(1),
        named(
            "INSERT INTO task_runs(task_id, worker, claim_lock, started_at)
             VALUES (:t, :w, :lock, :now) RETURNING id",
            &[
                (":t", text(task)),
                (":w", text(worker)),
                (":lock", text(lock)),
                (":now", Value::Integer(now)),
            ],
        ),
        named(
            "UPDATE tasks SET current_run_id = last_insert_rowid() WHERE id = :t",
            &[(":t", text(task))],
        ),
        named(
            "INSERT INTO task_events(task_id, run_id, kind, created_at)
             SELECT id, current_run_id, 'claimed', :now FROM tasks WHERE id = :t",
            &[(":t", text(task)), (":now", Value::Integer(now))],
        ),
    ]
}

/// Extends a claim; `Conflict` tells a worker its claim was taken away.
pub fn heartbeat(task: &str, lock: &str, now: i64, lease_ms: i64) -> Vec<Statement> {
    vec![named(
        "UPDATE tasks SET claim_expires = :exp, last_heartbeat_at = :now
         WHERE id = :t AND claim_lock = :lock AND status = 'running'",
        &[
            (":exp", Value::Integer(now + lease_ms)),
            (":now", Value::Integer(now)),
            (":t", text(task)),
            (":lock", text(lock)),
        ],
    )
    .expect_rows(1)]
}

/// Ends a claimed task as `done` (or `blocked`), ends its run, records the
/// event, and (when done) promotes children whose parents are all done.
pub fn finish(task: &str, lock: &str, run: i64, now: i64, blocked: bool) -> Vec<Statement> {
    let (status, outcome) = if blocked {
        ("blocked", "blocked")
    } else {
        ("done", "completed")
    };
    let mut out = vec![
        named(
            &format!(
                "UPDATE tasks SET status = '{status}', result = 'ok', claim_lock = NULL,
                     claim_expires = NULL, current_run_id = NULL,
                     completed_at = CASE WHEN '{status}' = 'done' THEN :now END
                 WHERE id = :t AND claim_lock = :lock AND status = 'running'"
            ),
            &[
                (":now", Value::Integer(now)),
                (":t", text(task)),
                (":lock", text(lock)),
            ],
        )
        .expect_rows(1),
        named(
            &format!("UPDATE task_runs SET ended_at = :now, outcome = '{outcome}' WHERE id = :run"),
            &[(":now", Value::Integer(now)), (":run", Value::Integer(run))],
        ),
        named(
            &format!(
                "INSERT INTO task_events(task_id, run_id, kind, created_at)
                 VALUES (:t, :run, '{outcome}', :now)"
            ),
            &[
                (":t", text(task)),
                (":run", Value::Integer(run)),
                (":now", Value::Integer(now)),
            ],
        ),
    ];
    if !blocked {
        out.push(named(
            "UPDATE tasks SET status = 'ready'
             WHERE status = 'todo'
               AND id IN (SELECT child_id FROM task_links WHERE parent_id = :t)
               AND NOT EXISTS (SELECT 1 FROM task_links l JOIN tasks p ON p.id = l.parent_id
                               WHERE l.child_id = tasks.id AND p.status != 'done')",
            &[(":t", text(task))],
        ));
        // A child of this task cannot have been ready before it was done,
        // so the ready children now are exactly the ones just promoted.
        out.push(named(
            "INSERT INTO task_events(task_id, kind, created_at)
             SELECT l.child_id, 'promoted', :now FROM task_links l JOIN tasks c ON c.id = l.child_id
             WHERE l.parent_id = :t AND c.status = 'ready'",
            &[(":t", text(task)), (":now", Value::Integer(now))],
        ));
    }
    out
}

/// Takes back a task whose claim expired: back to `ready`, its run ended
/// as `reclaimed`, a `reclaimed` event, one more failure.
pub fn reclaim(task: &str, seen_lock: &str, now: i64) -> Vec<Statement> {
    vec![
        named(
            "UPDATE tasks SET status = 'ready', claim_lock = NULL, claim_expires = NULL,
                 current_run_id = NULL, consecutive_failures = consecutive_failures + 1
             WHERE id = :t AND claim_lock = :seen AND status = 'running' AND claim_expires < :now",
            &[
                (":t", text(task)),
                (":seen", text(seen_lock)),
                (":now", Value::Integer(now)),
            ],
        )
        .expect_rows(1),
        named(
            "UPDATE task_runs SET ended_at = :now, outcome = 'reclaimed'
             WHERE task_id = :t AND claim_lock = :seen AND ended_at IS NULL",
            &[
                (":t", text(task)),
                (":seen", text(seen_lock)),
                (":now", Value::Integer(now)),
            ],
        ),
        named(
            "INSERT INTO task_events(task_id, kind, created_at) VALUES (:t, 'reclaimed', :now)",
            &[(":t", text(task)), (":now", Value::Integer(now))],
        ),
    ]
}
