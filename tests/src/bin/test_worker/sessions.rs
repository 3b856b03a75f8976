//! The write-session modes of `test-worker`.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use scribe_client::{Client, Options};
use scribe_protocol::{Params, Paths, Statement, Value, WriteError};

/// `claim-session WORKER LOGFILE`: claims ready tasks one interactive
/// transaction at a time (read a ready task, choose it in code, a
/// compare-and-set UPDATE, a run, an event, COMMIT) until none is left;
/// appends each claimed id to LOGFILE; prints `claimed=N errors=E`.
pub async fn claim(paths: &Paths, worker: &str, log: &Path) -> ExitCode {
    let Some(mut log) = crate::open_log(log) else {
        return ExitCode::from(2);
    };
    let client = match Client::connect(paths, &Options::default()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (mut claimed, mut errors) = (0u64, 0u64);
    loop {
        let me = worker.to_owned();
        let outcome = client
            .transaction(|tx| {
                let me = me.clone();
                async move {
                    let ready = tx
                        .execute(
                            "SELECT id FROM tasks WHERE status = 'ready' ORDER BY id LIMIT 4",
                            Params::None,
                        )
                        .await?;
                    // Chosen in code: the highest id of the few offered.
                    let Some(Value::Integer(id)) = ready
                        .rows
                        .iter()
                        .filter_map(|r| r.first())
                        .next_back()
                        .cloned()
                    else {
                        return Ok(None);
                    };
                    let set = tx
                        .execute(
                            "UPDATE tasks SET status = 'claimed', owner = ?1 \
                             WHERE id = ?2 AND status = 'ready'",
                            Params::Positional(vec![me.clone().into(), id.into()]),
                        )
                        .await?;
                    if set.rows_affected != 1 {
                        return Err(WriteError::Conflict {
                            statement: None,
                            message: format!("task {id} was not ready any more"),
                        });
                    }
                    let run = tx
                        .execute(
                            "INSERT INTO runs(task, worker) VALUES (?1, ?2)",
                            Params::Positional(vec![id.into(), me.clone().into()]),
                        )
                        .await?;
                    tx.execute(
                        "INSERT INTO events(task, run, kind) VALUES (?1, ?2, 'claimed')",
                        Params::Positional(vec![id.into(), run.last_insert_rowid.into()]),
                    )
                    .await?;
                    Ok(Some(id))
                }
            })
            .await;
        match outcome {
            Ok(Some(id)) => {
                claimed += 1;
                let _ = writeln!(log, "{id}");
            }
            Ok(None) => break,
            Err(e) => {
                eprintln!("{worker}: {e}");
                errors += 1;
                if errors > 20 {
                    break;
                }
            }
        }
    }
    println!("claimed={claimed} errors={errors}");
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `hold-session TAG PAUSE_MS|stdin`: begins a session, inserts
/// `(TAG, 0)`, prints `holding`, waits PAUSE_MS (or, with `stdin`, until a
/// line or the end of stdin), then inserts `(TAG, 1)` and commits; prints
/// the outcome and exits with its category's code.
pub async fn hold(paths: &Paths, tag: &str, pause_ms: Option<u64>) -> ExitCode {
    let client = match Client::connect(paths, &Options::default()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    let insert = |i: i64| {
        Statement::new("INSERT INTO t(tag, i) VALUES (?1, ?2)")
            .params(vec![Value::Text(tag.to_owned()), Value::Integer(i)])
    };
    let tx = match client.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            println!("{e}");
            return ExitCode::from(e.category().exit_code());
        }
    };
    if let Err(e) = tx.exec(insert(0)).await {
        println!("{e}");
        return ExitCode::from(e.category().exit_code());
    }
    println!("holding");
    let _ = std::io::stdout().flush();
    match pause_ms {
        Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        None => {
            let _ = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)
            })
            .await;
        }
    }
    let done = async {
        tx.exec(insert(1)).await?;
        tx.commit().await
    };
    match done.await {
        Ok(r) => {
            println!("committed seq={}", r.seq);
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{}: {e}", e.category());
            ExitCode::from(e.category().exit_code())
        }
    }
}
