//! The worker role: pull a ready task, claim it, work with heartbeats,
//! then complete, block, complete twice, or die silently.

use std::time::{Duration, Instant};

use scribe_protocol::Value;

use super::board::Refusal;
use super::ops;
use super::roles::{now_ms, Ctx, HEARTBEAT, LEASE_MS};

enum Outcome {
    Complete,
    Twice,
    Block,
    Die,
}

/// Pulls ready tasks, claims one, works 50–500 ms with heartbeats, then:
/// ~85% complete, ~5% complete twice, ~5% block, ~5% die silently.
pub(super) fn worker(ctx: &mut Ctx<'_>) {
    let me = format!("w{}", ctx.spec.id);
    let mut n = 0u64;
    while !ctx.stopped() {
        let ready = ctx.board.read(
            "SELECT id FROM tasks WHERE status = 'ready' AND claim_lock IS NULL
             ORDER BY priority DESC, created_at LIMIT 8",
            Vec::new(),
        );
        let candidates: Vec<String> = match ready {
            Ok(rows) => rows
                .into_iter()
                .filter_map(|r| match r.into_iter().next() {
                    Some(Value::Text(t)) => Some(t),
                    _ => None,
                })
                .collect(),
            Err(e) => {
                ctx.report.errors.push(e);
                return;
            }
        };
        if candidates.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let task = candidates[ctx.rng.range(0, candidates.len() as u64) as usize].clone();
        let lock = format!("{me}-{}-{n}-{:x}", std::process::id(), ctx.rng.next_u64());
        n += 1;
        let run = match ctx.write("claim", ops::claim(&task, &me, &lock, now_ms(), LEASE_MS)) {
            Ok(r) => match r[1].rows.first().and_then(|row| row.first()) {
                Some(Value::Integer(id)) => *id,
                _ => {
                    ctx.report.errors.push("claim returned no run id".into());
                    continue;
                }
            },
            Err(Refusal::Conflict) => {
                // Another worker claimed it first: the compare-and-set did
                // its job.
                ctx.report.conflicts += 1;
                continue;
            }
            Err(Refusal::Error(_)) => continue,
        };
        let roll = ctx.rng.range(0, 100);
        let outcome = match roll {
            0..=84 => Outcome::Complete,
            85..=89 => Outcome::Twice,
            90..=94 => Outcome::Block,
            _ => Outcome::Die,
        };
        if let Outcome::Die = outcome {
            die(ctx, &task, &lock, run);
            return;
        }
        if !work(ctx, &task, &lock) {
            continue;
        }
        let blocked = matches!(outcome, Outcome::Block);
        match ctx.write(
            if blocked { "block" } else { "complete" },
            ops::finish(&task, &lock, run, now_ms(), blocked),
        ) {
            Ok(_) if !blocked => ctx.report.completed.push(task.clone()),
            Ok(_) => {}
            Err(Refusal::Conflict) => ctx.report.caught += 1,
            Err(Refusal::Error(_)) => continue,
        }
        if let Outcome::Twice = outcome {
            match ctx
                .board
                .write(ops::finish(&task, &lock, run, now_ms(), false))
            {
                Err(Refusal::Conflict) => ctx.report.caught += 1,
                Ok(_) => ctx
                    .report
                    .errors
                    .push(format!("task {task} completed twice")),
                Err(Refusal::Error(e)) => ctx.report.errors.push(e),
            }
        }
    }
}

/// Works 50–500 ms, heartbeating; false when the claim was taken away.
fn work(ctx: &mut Ctx<'_>, task: &str, lock: &str) -> bool {
    let end = Instant::now() + Duration::from_millis(ctx.rng.range(50, 500));
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(HEARTBEAT));
        if Instant::now() >= end {
            return true;
        }
        match ctx.write("heartbeat", ops::heartbeat(task, lock, now_ms(), LEASE_MS)) {
            Ok(_) => {}
            Err(Refusal::Conflict) => {
                ctx.report.caught += 1;
                return false;
            }
            Err(Refusal::Error(_)) => return false,
        }
    }
}

/// Dies silently: no more heartbeats; once the dispatcher has taken the
/// task back, a late complete must be refused; then the process exits.
fn die(ctx: &mut Ctx<'_>, task: &str, lock: &str, run: i64) {
    ctx.report.died = true;
    let deadline = Instant::now() + Duration::from_millis(LEASE_MS as u64 * 10);
    let mut taken_back = false;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let still_mine = ctx.board.read(
            "SELECT count(*) FROM tasks WHERE id = :t AND claim_lock = :l",
            vec![
                (":t".into(), Value::Text(task.into())),
                (":l".into(), Value::Text(lock.into())),
            ],
        );
        if matches!(still_mine.as_deref(), Ok([row]) if row.first() == Some(&Value::Integer(0))) {
            taken_back = true;
            break;
        }
    }
    match ctx
        .board
        .write(ops::finish(task, lock, run, now_ms(), false))
    {
        Err(Refusal::Conflict) => ctx.report.caught += 1,
        // Never taken back (the run ended first): the claim was still ours.
        Ok(_) if !taken_back => {}
        Ok(_) => ctx
            .report
            .errors
            .push(format!("a late complete of {task} was accepted")),
        Err(Refusal::Error(e)) => ctx.report.errors.push(e),
    }
}
