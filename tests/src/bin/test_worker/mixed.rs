//! The `mixed` mode of `test-worker`: batches that fail halfway among
//! batches that succeed, several in flight, so that the arbiter's groups
//! mix them.

use std::process::ExitCode;

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
    let Some(client) = crate::connect(paths).await else {
        return ExitCode::FAILURE;
    };
    let tag = tag.to_owned();
    let ends = crate::in_lanes(&client, rows, inflight, move |client, i| {
        let tag = tag.clone();
        async move {
            match (i.is_multiple_of(3), client.write(batch(&tag, i)).await) {
                (false, Ok(_)) => End::Committed,
                (
                    true,
                    Err(WriteError::Sql {
                        statement: Some(1),
                        code: UNIQUE,
                        ..
                    }),
                ) => End::Failed,
                (_, other) => {
                    eprintln!("batch {tag}/{i} ended wrong: {other:?}");
                    End::Wrong
                }
            }
        }
    })
    .await;
    let count = |end: End| ends.iter().filter(|e| **e == end).count();
    let wrong = count(End::Wrong);
    println!(
        "ok={} failed={} wrong={wrong}",
        count(End::Committed),
        count(End::Failed)
    );
    if wrong == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// How a batch ended, against how it should have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Committed,
    Failed,
    Wrong,
}
