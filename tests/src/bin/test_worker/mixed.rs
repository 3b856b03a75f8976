//! The `mixed` mode of `test-worker`: batches that fail halfway among
//! batches that succeed, several in flight, so that the arbiter's groups
//! mix them.

use std::process::ExitCode;

use scribe_client::{Client, Options};
use scribe_protocol::{Batch, Paths, Statement, Value, WriteError};

/// SQLite's extended code for a UNIQUE constraint.
const UNIQUE: i32 = 2067;

/// Batch `i` of `tag`: for every third `i`, the row `(tag, i)` twice (the
/// second insert fails, and the first must not stay); else the row once.
fn batch(tag: &str, i: u64) -> Batch {
    let insert = || {
        Statement::new("INSERT INTO t(tag, i) VALUES (?1, ?2)")
            .params(vec![Value::Text(tag.to_owned()), Value::Integer(i as i64)])
    };
    if i.is_multiple_of(3) {
        Batch::new(vec![insert(), insert()])
    } else {
        Batch::one(insert())
    }
}

/// `mixed TAG ROWS INFLIGHT`: batches 0..ROWS, INFLIGHT at a time on one
/// connection; each must end as it should (every third failing at its
/// second statement with a UNIQUE error, the others committed). Prints
/// `ok=N failed=F wrong=W`; exits 1 when any ended otherwise.
pub async fn mixed(paths: &Paths, tag: &str, rows: u64, inflight: u64) -> ExitCode {
    let client = match Client::connect(paths, &Options::default()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut lanes = Vec::new();
    for lane in 0..inflight {
        let client = client.clone();
        let tag = tag.to_owned();
        lanes.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut wrong) = (0u64, 0u64, 0u64);
            for i in (lane..rows).step_by(inflight as usize) {
                match (i.is_multiple_of(3), client.write(batch(&tag, i)).await) {
                    (false, Ok(_)) => ok += 1,
                    (
                        true,
                        Err(WriteError::Sql {
                            statement: Some(1),
                            code: UNIQUE,
                            ..
                        }),
                    ) => failed += 1,
                    (_, other) => {
                        eprintln!("batch {tag}/{i} ended wrong: {other:?}");
                        wrong += 1;
                    }
                }
            }
            (ok, failed, wrong)
        }));
    }
    let (mut ok, mut failed, mut wrong) = (0, 0, 0);
    for lane in lanes {
        let (o, f, w) = lane.await.unwrap_or((0, 0, 1));
        ok += o;
        failed += f;
        wrong += w;
    }
    println!("ok={ok} failed={failed} wrong={wrong}");
    if wrong == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
