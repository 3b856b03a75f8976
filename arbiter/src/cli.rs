//! `scribed`'s flags and `main`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use scribe_protocol::Paths;
use tracing::Level;
use tracing_subscriber::{filter::Targets, prelude::*};

use crate::config::{Config, Synchronous, MAX_GROUP, QUEUE_CAPACITY};
use crate::daemon::{self, Exit};

/// The sole writer of one SQLite database. Runs in the foreground; stop it
/// with SIGINT, SIGTERM or `scribe stop`.
#[derive(Debug, Parser)]
#[command(name = "scribed", version)]
pub struct Args {
    /// The database file (created if missing).
    #[arg(long, env = scribe_protocol::paths::ENV_DB, value_name = "PATH")]
    pub db: PathBuf,
    /// The RPC socket (default: beside the database).
    #[arg(long, env = scribe_protocol::paths::ENV_SOCKET, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Durability of each commit.
    #[arg(long, value_enum, env = "SCRIBE_SYNCHRONOUS", default_value = "full")]
    pub synchronous: Synchronous,
    /// Writes that may wait in the queue before callers get `Overloaded`.
    #[arg(long, default_value_t = QUEUE_CAPACITY)]
    pub queue_capacity: usize,
    /// Most batches committed in one transaction.
    #[arg(long, default_value_t = MAX_GROUP)]
    pub max_group: usize,
    /// After SIGTERM/SIGINT, how long auto-start stays off (e.g. 30s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub stop_grace: Duration,
    /// Exit (after draining) when no call came for this long (e.g. 10m);
    /// off by default. For tools that auto-start the arbiter on demand.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DUR")]
    pub idle_exit: Option<Duration>,
    /// Time one batch may run before it is interrupted and refused.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub batch_budget: Duration,
    /// Idempotency keys are kept at least this long…
    #[arg(long, value_parser = humantime::parse_duration, default_value = "24h")]
    pub key_retention: Duration,
    /// …unless more than this many are stored (the oldest go first).
    #[arg(long, default_value_t = 100_000)]
    pub max_keys: u64,
}

/// Entry point of `scribed`.
pub fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing();
    let paths = match Paths::for_db(&args.db, args.socket.clone()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("scribed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut config = Config::new(paths);
    config.synchronous = args.synchronous;
    config.queue_capacity = args.queue_capacity.max(1);
    config.max_group = args.max_group.max(1);
    config.stop_grace = args.stop_grace;
    config.idle_exit = args.idle_exit;
    config.batch_budget = args.batch_budget;
    config.retention = crate::requests::Retention {
        window: args.key_retention,
        max_keys: args.max_keys,
    };
    match daemon::run(config) {
        Ok(Exit::AlreadyRunning(pid)) => {
            match pid {
                Some(pid) => println!("already running (pid {pid})"),
                None => println!("already running"),
            }
            ExitCode::SUCCESS
        }
        Ok(Exit::Stopped { .. }) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scribed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr; `RUST_LOG` takes `target=level` pairs (default `info`,
/// with tarpc's per-request noise at `warn`).
fn init_tracing() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|s| s.parse::<Targets>().ok())
        .unwrap_or_else(|| {
            Targets::new()
                .with_default(Level::INFO)
                .with_target("tarpc", Level::WARN)
        });
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr),
        )
        .with(filter)
        .try_init();
}
