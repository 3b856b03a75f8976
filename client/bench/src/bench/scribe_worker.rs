//! A bench worker writing through scribe: `in_flight` writes at a time on
//! one client (pipelined on its one connection), until its count or its
//! time is up.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use scribe_client::{Client, Options};
use scribe_protocol::{Batch, Params, Statement, Value, WriteError};

use super::worker::{
    failed, more, payload, runtime, worker_paths, CLAIM_ONE, FREE_TASK, INSERT, TAKE_TASK,
};
use crate::shared::cpu;
use crate::shared::procs::ready_and_wait;
use crate::shared::spec::{now_us, WorkerReport, WorkerSpec, Workload};

/// The request number `n` of this worker.
fn batch(spec: &WorkerSpec, n: u64) -> Batch {
    match spec.workload {
        Workload::Insert => Batch::one(Statement::new(INSERT).params(vec![
            Value::Integer(i64::from(spec.id)),
            Value::Integer(n as i64),
            Value::Blob(payload(spec.id, n)),
        ])),
        Workload::Batch => Batch::new(
            (0..spec.batch_size)
                .map(|k| {
                    let row = n * u64::from(spec.batch_size) + u64::from(k);
                    Statement::new(INSERT).params(vec![
                        Value::Integer(i64::from(spec.id)),
                        Value::Integer(row as i64),
                        Value::Blob(payload(spec.id, row)),
                    ])
                })
                .collect(),
        ),
        Workload::Claim => Batch::one(
            Statement::new(CLAIM_ONE)
                .params(vec![
                    Value::Integer(i64::from(spec.id)),
                    Value::Integer(now_us() as i64),
                ])
                .expect_rows(1),
        ),
        Workload::Session | Workload::Kanban => unreachable!("not a batch"),
    }
}

/// One claim of the `session` workload, as a write session: the claimed
/// task, or `None` when no task is free.
async fn claim_in_session(client: &Client, spec: &WorkerSpec) -> Result<Option<i64>, WriteError> {
    client
        .transaction(|tx| async move {
            let free = tx.execute(FREE_TASK, Params::None).await?;
            let Some(Value::Integer(id)) = free.rows.first().and_then(|r| r.first()).cloned()
            else {
                return Ok(None);
            };
            let me = Value::Integer(i64::from(spec.id));
            let taken = tx
                .execute(
                    TAKE_TASK,
                    Params::Positional(vec![
                        me.clone(),
                        Value::Integer(now_us() as i64),
                        Value::Integer(id),
                    ]),
                )
                .await?;
            if taken.rows_affected != 1 {
                return Err(WriteError::Conflict {
                    statement: None,
                    message: format!("task {id} was taken inside a session"),
                });
            }
            tx.execute(
                INSERT,
                Params::Positional(vec![
                    me,
                    Value::Integer(id),
                    Value::Blob(payload(spec.id, id as u64)),
                ]),
            )
            .await?;
            Ok(Some(id))
        })
        .await
}

/// What one lane (one write in flight at a time) did.
#[derive(Default)]
struct Lane {
    latencies: Vec<u32>,
    ops: u64,
    rows: u64,
    claimed: Vec<i64>,
    errors: Vec<String>,
}

async fn lane(client: Client, spec: Rc<WorkerSpec>, next: Rc<AtomicU64>, started: Instant) -> Lane {
    let mut out = Lane::default();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if !more(&spec, n, started) {
            return out;
        }
        let t = Instant::now();
        if spec.workload == Workload::Session {
            match claim_in_session(&client, &spec).await {
                Ok(Some(id)) => {
                    out.latencies.push(t.elapsed().as_micros() as u32);
                    out.ops += 1;
                    out.rows += 1;
                    out.claimed.push(id);
                    continue;
                }
                Ok(None) => return out,
                Err(e) => {
                    out.errors.push(e.to_string());
                    return out;
                }
            }
        }
        match client.write(batch(&spec, n)).await {
            Ok(r) => {
                out.latencies.push(t.elapsed().as_micros() as u32);
                out.ops += 1;
                out.rows += r.results.iter().map(|s| s.rows_affected).sum::<u64>();
                if spec.workload == Workload::Claim {
                    if let Some(Value::Integer(id)) =
                        r.results[0].rows.first().and_then(|r| r.first())
                    {
                        out.claimed.push(*id);
                    }
                }
            }
            Err(WriteError::Conflict { .. }) if spec.workload == Workload::Claim => return out,
            Err(e) => {
                out.errors.push(e.to_string());
                return out;
            }
        }
    }
}

/// Runs the worker; reports what it did.
pub fn run(spec: &WorkerSpec) -> WorkerReport {
    let rt = runtime();
    let mut report = WorkerReport::default();
    let options = Options {
        autostart: false,
        ..Options::default()
    };
    let client = match worker_paths(spec).and_then(|paths| {
        rt.block_on(Client::connect(&paths, &options))
            .map_err(|e| e.to_string())
    }) {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    ready_and_wait(spec);
    let started = Instant::now();
    report.start_us = now_us();
    let cpu = cpu::self_us();
    let spec_rc = Rc::new(spec.clone());
    let next = Rc::new(AtomicU64::new(0));
    let lanes = rt.block_on(async {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let handles: Vec<_> = (0..spec.in_flight.max(1))
                    .map(|_| {
                        tokio::task::spawn_local(lane(
                            client.clone(),
                            spec_rc.clone(),
                            next.clone(),
                            started,
                        ))
                    })
                    .collect();
                let mut lanes = Vec::new();
                for h in handles {
                    lanes.push(h.await.unwrap_or_default());
                }
                lanes
            })
            .await
    });
    report.end_us = now_us();
    report.cpu_us = cpu::self_us().saturating_sub(cpu);
    let mut all = Vec::new();
    for l in lanes {
        all.extend(l.latencies);
        report.ops += l.ops;
        report.rows += l.rows;
        report.claimed.extend(l.claimed);
        report.errors.extend(l.errors);
    }
    report.busy_retries = client.stats().retries;
    report.latencies.push((spec.workload.name().into(), all));
    report
}
