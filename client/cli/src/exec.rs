//! `scribe exec`: one batch through the arbiter.

use std::io::Read;
use std::path::PathBuf;

use scribe_protocol::{Batch, Statement, WriteError};

use super::{params, render, Ctx, Failure};
use scribe_client::{script, Client};

/// `scribe exec` arguments.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// SQL: one statement, or several separated by `;` (one atomic batch;
    /// --param and --expect-rows take one statement).
    #[arg(
        required_unless_present = "file",
        conflicts_with = "file",
        allow_hyphen_values = true
    )]
    pub sql: Option<String>,
    #[command(flatten)]
    pub params: params::ParamArgs,
    /// Fail with `Conflict` (writing nothing) unless exactly N rows change.
    #[arg(long, value_name = "N")]
    pub expect_rows: Option<u64>,
    /// Run every statement of this file (`-` for stdin) as ONE atomic batch.
    #[arg(long, short = 'f', value_name = "FILE", conflicts_with_all = ["params", "expect_rows"])]
    pub file: Option<PathBuf>,
    /// Idempotency key for this batch: a repeat of the same batch with the
    /// same key writes nothing and returns the first receipt.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// Keep retrying retryable failures (unavailable, timeout, overloaded,
    /// shutting down) for this long, safely: the batch carries a key.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DUR", default_value = "0s")]
    pub retry_for: std::time::Duration,
    /// Give up, writing nothing, unless the writer starts the batch within
    /// DUR (it may wait behind another connection's transaction, a
    /// migration or a backlog): exit 12, "database is busy", as SQLite's
    /// busy timeout. Shorter than --timeout; default: wait, up to --timeout.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DUR")]
    pub wait: Option<std::time::Duration>,
}

/// Runs `scribe exec`.
///
/// # Errors
///
/// The batch's categorized error, or a local failure reading the file.
pub fn run(ctx: &Ctx, args: ExecArgs) -> Result<(), Failure> {
    let statements = match (&args.sql, &args.file) {
        (Some(sql), _) if args.params.params.is_empty() && args.expect_rows.is_none() => {
            // Several statements in one argument, as `sqlite3 DB "…; …"`
            // takes them: one atomic batch, as --file makes.
            let statements =
                script::split(sql).map_err(|e| Failure::Usage(format!("the SQL: {e}")))?;
            let statements = if statements.is_empty() {
                vec![sql.clone()] // SQLite's own words for an empty one
            } else {
                statements
            };
            statements.into_iter().map(Statement::new).collect()
        }
        (Some(sql), _) if script::split(sql).is_ok_and(|s| s.len() > 1) => {
            return Err(Failure::Usage(
                "-p and --expect-rows apply to one statement, and the SQL holds several: give \
                 one statement per `scribe exec` (several, without -p, are one batch)"
                    .into(),
            ))
        }
        (Some(sql), _) => vec![Statement {
            sql: sql.clone(),
            params: args.params.parse().map_err(Failure::Usage)?,
            expect_rows: args.expect_rows,
        }],
        (None, Some(file)) => read_script(file)?.into_iter().map(Statement::new).collect(),
        (None, None) => return Err(Failure::Usage("give SQL or --file".into())),
    };
    if let Some(wait) = args.wait.filter(|w| *w >= ctx.options.call_timeout) {
        // The call's deadline would pass first, leaving the outcome unknown
        // where the limit was meant to say "not written".
        return Err(Failure::Usage(format!(
            "--wait {} must be shorter than --timeout {}",
            humantime::format_duration(wait),
            humantime::format_duration(ctx.options.call_timeout)
        )));
    }
    // The key is made here, not by the client, so that a timeout can name
    // it: the outcome is then unknown, and only the same key asks safely.
    let key = args.key.unwrap_or_else(scribe_client::retry::new_key);
    let batch = Batch {
        statements,
        key: Some(key.clone()),
        wait_ms: args
            .wait
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        foreign_keys: None,
    };
    let options = scribe_client::Options {
        retry_for: args.retry_for,
        // An arbiter busy starting (migrations at open) holds the writer:
        // --wait limits the wait for it too.
        starting_wait: args.wait,
        ..ctx.options.clone()
    };
    // A failure before the batch was sent (the connection, its hello)
    // leaves no outcome to learn.
    let client = ctx.runtime.block_on(connect(ctx, &options))?;
    let receipt = ctx
        .runtime
        .block_on(client.write(batch))
        .map_err(|e| match e {
            WriteError::Timeout { message } => {
                let said = format!("\"{key}\"");
                let key_was = if message.contains(&said) {
                    String::new()
                } else {
                    format!("; this batch's key was {key}")
                };
                WriteError::Timeout {
                    message: format!(
                        "{message}{key_was}: run the same command with `--key {key}` to \
                         learn its outcome (it is written at most once)"
                    ),
                }
            }
            other => other,
        })?;
    render::done_before(&format!(
        "the batch was committed (seq {}) all the same: run the same command with `--key {key}` \
         to see its outcome again (it is written at most once)",
        receipt.seq
    ));
    if ctx.json {
        render::print_answer(&scribe_protocol::frame::Answer::Receipt(receipt));
        return Ok(());
    }
    let total: u64 = receipt.results.iter().map(|r| r.rows_affected).sum();
    let last = receipt.results.last().map_or(0, |r| r.last_insert_rowid);
    let what = if receipt.replayed {
        "already committed (replayed from its key)"
    } else {
        "committed"
    };
    outln!(
        "{what} (seq {}): {} statement(s), {total} row(s) affected, last insert rowid {last}",
        receipt.seq,
        receipt.results.len()
    );
    for r in receipt.results.iter().filter(|r| !r.columns.is_empty()) {
        outln!("{}", render::rows_table(&r.columns, &r.rows));
    }
    Ok(())
}

fn read_script(file: &PathBuf) -> Result<Vec<String>, Failure> {
    let mut text = String::new();
    let read = if file.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| Failure::Local(format!("cannot read {}: {e}", file.display())))?;
    let statements =
        script::split(&text).map_err(|e| Failure::Local(format!("{}: {e}", file.display())))?;
    if statements.is_empty() {
        return Err(Failure::Local(format!(
            "{} holds no SQL statement",
            file.display()
        )));
    }
    Ok(statements)
}

/// Connects, retrying what a write would retry for as long as
/// `--retry-for` (it covered only the write: an arbiter that did not answer
/// the first hello failed the command at once).
async fn connect(ctx: &Ctx, options: &scribe_client::Options) -> Result<Client, WriteError> {
    use scribe_client::retry::{self, Backoff, Verdict};
    let deadline = retry::deadline(options.retry_for);
    let mut backoff = Backoff::default();
    loop {
        let error = match Client::connect(&ctx.paths, options).await {
            Ok(client) => return Ok(client),
            Err(e) => e,
        };
        let Verdict::Retry { at_least, .. } = retry::verdict(&error, &ctx.paths) else {
            return Err(retry::given_up(error, &ctx.paths));
        };
        let pause = backoff.pause(at_least);
        if options.retry_for.is_zero() || retry::past(deadline, pause) {
            return Err(error);
        }
        tokio::time::sleep(pause).await;
    }
}
