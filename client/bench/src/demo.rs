//! `scribe demo`: the kanban workload on scribe, as real processes, with
//! a live dashboard and a checked summary.

use std::path::PathBuf;
use std::time::Duration;

use scribe_protocol::{Batch, Paths, Statement, StopRequest};

use scribe_client::{script, Client, Connection, Options};

use crate::error::Error as Failure;
use crate::kanban::{self, Config};
use crate::shared::report::percentile;
use crate::shared::spec::{Sync, Target};

/// Prints a line; a closed standard output (`scribe demo | head`) ends
/// the program quietly, as it ends any Unix filter.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

/// `scribe demo` arguments.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where to put the database (default: a new directory under the
    /// system's temp dir, kept so you can look at it afterwards).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// How long tasks are created.
    #[arg(long, default_value_t = 25.0)]
    pub seconds: f64,
    /// Worker processes.
    #[arg(long, default_value_t = 8)]
    pub workers: u32,
}

/// Runs the demo.
///
/// # Errors
///
/// When it cannot run, or an invariant does not hold.
pub fn run(args: &DemoArgs) -> Result<(), Failure> {
    let local = Failure::Failed;
    let dir = match &args.dir {
        Some(d) => {
            // A directory an earlier demo used still holds its board, its
            // arbiter's stop marker and the run's stop files: a second run
            // there would stop as it starts.
            if d.join("kanban.db").exists() {
                return Err(local(format!(
                    "{} holds an earlier demo (kanban.db): give a new or empty directory, \
                     or remove that one first",
                    d.display()
                )));
            }
            std::fs::create_dir_all(d).map_err(|e| local(format!("{}: {e}", d.display())))?;
            d.clone()
        }
        None => tempfile::Builder::new()
            .prefix("scribe-demo-")
            .tempdir()
            .map_err(|e| local(e.to_string()))?
            .keep(),
    };
    let db = dir.join("kanban.db");
    let paths = Paths::for_db(&db, None).map_err(|e| local(e.to_string()))?;
    // The writer connection's settings belong to the arbiter's config.
    std::fs::write(
        &paths.config,
        "synchronous = full\npragma = foreign_keys=on\npragma = wal_autocheckpoint=100\n",
    )
    .map_err(|e| local(e.to_string()))?;
    outln!("scribe demo: kanban board at {}", db.display());
    outln!(
        "  {} workers (some die silently, some complete twice), 2 creators, a dispatcher, a dashboard",
        args.workers
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| local(e.to_string()))?;
    rt.block_on(async {
        // The first write auto-starts the arbiter, which creates the file.
        let options = Options {
            self_arbiter: true,
            ..Options::default()
        };
        let client = Client::connect(&paths, &options).await?;
        let statements = script::split(kanban::SCHEMA)
            .map_err(|reason| scribe_protocol::WriteError::Refused {
                statement: None,
                reason,
            })?
            .into_iter()
            .map(Statement::new)
            .collect();
        client.write(Batch::new(statements)).await
    })?;
    let config = Config {
        db: db.clone(),
        dir: dir.clone(),
        target: Target::Scribe,
        sync: Sync::Full,
        workers: args.workers,
        creators: 2,
        seconds: args.seconds,
        progress: true,
    };
    let outcome = kanban::run(&config).map_err(local)?;
    let _ = rt.block_on(async {
        let c = Connection::connect(
            &paths,
            &Options {
                autostart: false,
                ..Options::default()
            },
        )
        .await?;
        c.stop(StopRequest {
            hold: false,
            grace_ms: Some(0),
        })
        .await
    });
    summary(&outcome, &db);
    if outcome.holds() {
        Ok(())
    } else {
        Err(Failure::Failed(
            "an invariant did not hold (see above)".into(),
        ))
    }
}

fn summary(o: &kanban::Outcome, db: &std::path::Path) {
    let secs = o.elapsed.as_secs_f64();
    let count = |sql: &str| -> i64 {
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| {
                c.busy_timeout(Duration::from_secs(5))?;
                c.query_row(sql, [], |r| r.get(0))
            })
            .unwrap_or(-1)
    };
    let all = o.latencies(None);
    outln!("");
    outln!("summary after {secs:.1} s");
    outln!(
        "  tasks: {} created ({} duplicate creations refused by idempotency key), {} done, {} blocked, {} still waiting",
        o.sum(|r| r.created),
        o.sum(|r| r.deduplicated),
        count("SELECT count(*) FROM tasks WHERE status = 'done'"),
        count("SELECT count(*) FROM tasks WHERE status = 'blocked'"),
        count("SELECT count(*) FROM tasks WHERE status IN ('ready', 'todo')"),
    );
    outln!(
        "  workers: {} died silently and were replaced; {} claims reclaimed by the dispatcher",
        o.deaths,
        o.sum(|r| r.reclaims)
    );
    outln!(
        "  conflicts caught: {} late or repeated completes and stale heartbeats refused; {} claim races lost cleanly",
        o.sum(|r| r.caught),
        o.sum(|r| r.conflicts)
    );
    outln!(
        "  writes: {} batches, {:.0}/s; latency p50 {} µs, p99 {} µs",
        all.len(),
        all.len() as f64 / secs,
        percentile(&all, 50.0),
        percentile(&all, 99.0)
    );
    outln!("  invariants:");
    for (name, ok, detail) in &o.invariants {
        outln!("    {} {name}: {detail}", if *ok { "✓" } else { "✗" });
    }
    outln!("");
    // The path of this very CLI, so the hint works after `cargo run` too.
    let me = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "scribe".into());
    outln!("look inside (reads go straight to the file; the arbiter is stopped):");
    outln!(
        "  {me} --db {} query \"SELECT status, count(*) FROM tasks GROUP BY status\"",
        db.display()
    );
    outln!(
        "  {me} --db {} query \"SELECT kind, count(*) FROM task_events GROUP BY kind\"",
        db.display()
    );
}
