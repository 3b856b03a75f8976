//! The `scribe` command line: writes through the arbiter (with the
//! `scribe-client` library), reads straight from the file, the lifecycle
//! commands, and `bench` and `demo` (from `scribe-bench`). It is the one
//! package that links the arbiter, so that `scribe arbiter` can run it
//! when no `scribed` is installed.
//!
//! Exit codes: 0 success; 1 a local failure (unreadable file…); 2 a usage
//! error; 10–17 one per error category (see
//! [`Category::exit_code`](scribe_protocol::Category::exit_code)).
//!
//! # Layout
//!
//! - this file: the flags, the subcommands, `main`, [`Failure`].
//! - `exec`: `scribe exec`, one batch through the arbiter.
//! - `query`: `scribe query`, a read on the file.
//! - `migrate`: `scribe migrate`, schema migrations and their history.
//! - `status`: `scribe status`.
//! - `lifecycle`: `start`, `stop`, `restart`.
//! - `live`: reaching the running arbiter; liveness by the lock, one starting waited for.
//! - `params`: how a `--param` value's type is chosen.
//! - `render`: tables, CSV and JSON out; quiet on a closed pipe.
//! - `real_text`: a real printed as SQLite prints it.
//! - `shown`: control characters in a table, shown rather than sent.
//! - `shell`: `scribe shell`, the interactive SQL shell.

/// `println!` that ends the program quietly when standard output is a
/// closed pipe, instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::render::emit(format_args!($($arg)*))
    };
}

/// `errln!` that goes on when standard error cannot be written (a full
/// disk, a closed pipe): the exit code still says how the command ended
/// (`errln!` panicked there, exiting 101 whatever the outcome).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod exec;
mod lifecycle;
mod live;
mod migrate;
mod params;
mod query;
mod real_text;
mod render;
mod shell;
mod shown;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use scribe_protocol::{Paths, WriteError};

use scribe_client::Options;

/// Share one SQLite database between many processes: writes go through the
/// arbiter (`scribed`), reads go straight to the file.
#[derive(Debug, Parser)]
#[command(name = "scribe", version)]
pub struct Cli {
    /// The database file.
    #[arg(long, global = true, env = scribe_protocol::paths::ENV_DB, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// The arbiter's socket (default: beside the database).
    #[arg(long, global = true, env = scribe_protocol::paths::ENV_SOCKET, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Never start the arbiter (also: SCRIBE_AUTOSTART=0).
    #[arg(long, global = true)]
    pub no_autostart: bool,
    /// Deadline of each call to the arbiter (e.g. 500ms, 10s).
    #[arg(long, global = true, value_parser = deadline, default_value = "10s")]
    pub timeout: Duration,
    /// How long an auto-started arbiter has to become ready.
    #[arg(long, global = true, value_parser = deadline, default_value = "5s")]
    pub ready_timeout: Duration,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write: run statements through the arbiter as one atomic batch.
    Exec(exec::ExecArgs),
    /// Read: run a query directly on the database file.
    Query(query::QueryArgs),
    /// Apply schema migrations (files NNNN_name.sql) through the arbiter,
    /// or show which are applied (--status).
    Migrate(migrate::MigrateArgs),
    /// An interactive SQL shell (reads from stdin when it is not a terminal).
    Shell(shell::ShellArgs),
    /// Show the running arbiter's counters.
    Status,
    /// Start the arbiter in the background (no-op when it runs).
    Start(lifecycle::StartArgs),
    /// Stop the arbiter: drain its queue, wait until it has exited.
    Stop(lifecycle::StopArgs),
    /// Stop the arbiter, then start it again.
    Restart,
    /// Compare scribe with direct SQLite on the same workload, same run.
    Bench(scribe_bench::BenchArgs),
    /// The kanban workload as real processes on an auto-started arbiter.
    Demo(scribe_bench::DemoArgs),
    /// (internal) Run the arbiter in the foreground, as `scribed` would
    /// (used when no `scribed` binary is installed).
    #[command(hide = true, disable_help_flag = true)]
    Arbiter {
        /// `scribed`'s arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// (internal) One process of `bench` or `demo`.
    #[command(hide = true)]
    BenchWorker {
        /// The worker's spec, as JSON.
        spec: String,
    },
}

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// A categorized error (exit code per category).
    Category(WriteError),
    /// A read that failed (a category as for writes, worded for a read:
    /// no statement index, no "nothing was written").
    Read(WriteError),
    /// A local failure (exit code 1).
    Local(String),
    /// A value that does not parse or is out of range (exit code 2, as
    /// clap's own usage errors).
    Usage(String),
    /// Already reported (by the shell, line by line): exit with this code.
    Reported(u8),
}

impl Failure {
    /// The process's exit code for it.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Category(e) | Failure::Read(e) => e.category().exit_code(),
            Failure::Local(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Reported(code) => *code,
        }
    }
}

impl From<WriteError> for Failure {
    fn from(e: WriteError) -> Self {
        Failure::Category(e)
    }
}

/// What every command gets.
pub struct Ctx {
    /// Resolved paths.
    pub paths: Paths,
    /// Connection options.
    pub options: Options,
    /// JSON output.
    pub json: bool,
    /// Runtime for the RPC side.
    pub runtime: tokio::runtime::Runtime,
}

impl Ctx {
    /// The reader on the database; a missing database is created by the
    /// arbiter (started if needed), never by a reader.
    ///
    /// # Errors
    ///
    /// The reader's error (the arbiter's, when it could not be reached).
    pub fn open_reader(&self) -> Result<scribe_reader::Reader, scribe_reader::Error> {
        scribe_reader::Reader::open_or_create(&self.paths, |paths| {
            self.runtime
                .block_on(scribe_client::Connection::connect(paths, &self.options))
                .map(drop)
                .map_err(|e| match e {
                    // Worded once: the whole is `Unavailable` already.
                    scribe_protocol::WriteError::Unavailable { reason } => reason,
                    other => other.to_string(),
                })
        })
    }
}

/// A deadline flag's value: a duration above zero (at zero every call
/// would time out, a write's outcome then unknown though it committed).
fn deadline(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("a deadline must be above zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

/// Entry point of `scribe`.
pub fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let json = cli.json;
    // `bench` and `demo` make their own databases: a --db given to them
    // would be silently ignored (SCRIBE_DB in the environment is fine).
    let db_given = matches.value_source("db") == Some(clap::parser::ValueSource::CommandLine);
    if db_given && matches!(cli.command, Command::Bench(_) | Command::Demo(_)) {
        let f = Failure::Usage(
            "`scribe bench` and `scribe demo` make their own databases, so --db is not used: \
             `scribe demo --dir DIR` keeps its database at DIR/kanban.db"
                .into(),
        );
        render::failure(&f, json);
        return ExitCode::from(f.exit_code());
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            render::failure(&f, json);
            ExitCode::from(f.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    // These make their own databases.
    match &cli.command {
        Command::Bench(args) => {
            return scribe_bench::bench::run(args)
                .map(drop)
                .map_err(Failure::Local);
        }
        Command::Demo(args) => {
            return scribe_bench::demo::run(args).map_err(|e| match e {
                scribe_bench::Error::Scribe(w) => Failure::Category(w),
                other => Failure::Local(other.to_string()),
            })
        }
        Command::Arbiter { args } => {
            let mut argv = vec![std::ffi::OsString::from("scribed")];
            argv.extend(args.iter().cloned());
            let code = scribe_arbiter::cli::main_with(argv);
            std::process::exit(if code == std::process::ExitCode::SUCCESS {
                0
            } else {
                1
            });
        }
        Command::BenchWorker { spec } => {
            std::process::exit(scribe_bench::bench::worker::main(spec));
        }
        _ => {}
    }
    let paths = Paths::resolve(cli.db.as_deref(), cli.socket.as_deref()).map_err(|e| match e {
        // What the command line did not say, or said wrong.
        scribe_protocol::Error::NoDatabase | scribe_protocol::Error::Directory(_) => {
            Failure::Usage(e.to_string())
        }
        _ => Failure::Local(e.to_string()),
    })?;
    let mut options = Options {
        self_arbiter: true,
        ..Options::default()
    };
    options.autostart &= !cli.no_autostart;
    options.call_timeout = cli.timeout;
    options.ready_timeout = cli.ready_timeout;
    // One try unless a command asks for more (`exec --retry-for`).
    options.retry_for = std::time::Duration::ZERO;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Local(format!("cannot start the runtime: {e}")))?;
    let ctx = Ctx {
        paths,
        options,
        json: cli.json,
        runtime,
    };
    match cli.command {
        Command::Exec(args) => exec::run(&ctx, args),
        Command::Query(args) => query::run(&ctx, args),
        Command::Shell(args) => shell::run(&ctx, &args),
        Command::Migrate(args) => migrate::run(&ctx, &args),
        Command::Status => status::run(&ctx),
        Command::Start(args) => lifecycle::start(&ctx, &args),
        Command::Stop(args) => lifecycle::stop(&ctx, &args),
        Command::Restart => {
            // No grace: a caller meeting the gap retries instead of being
            // told auto-start is off for 30 s.
            let stop = lifecycle::StopArgs {
                hold: false,
                grace: Some(std::time::Duration::ZERO),
            };
            lifecycle::stop(&ctx, &stop)?;
            lifecycle::start(&ctx, &lifecycle::StartArgs::default())
        }
        Command::Bench(_)
        | Command::Demo(_)
        | Command::BenchWorker { .. }
        | Command::Arbiter { .. } => Ok(()),
    }
}
