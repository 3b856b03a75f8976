//! `scribed`'s flags and `main`.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use scribe_protocol::{limits, Paths};
use tracing::Level;
use tracing_subscriber::{filter::Targets, prelude::*};

use crate::config::{Config, Synchronous, MAX_GROUP, QUEUE_CAPACITY};
use crate::daemon::{self, Exit};

/// The sole writer of one SQLite database. Runs in the foreground; stop it
/// with SIGINT, SIGTERM or `scribe stop`.
///
/// Every flag but --db can also be set in `<db>.scribe.conf`, one
/// `name = value` per line (`#` starts a comment; repeat a line for a
/// repeatable flag); flags on the command line win.
#[derive(Debug, Parser)]
#[command(name = "scribed", version, args_override_self = true)]
pub struct Args {
    /// The database file (created if missing).
    #[arg(long, env = scribe_protocol::paths::ENV_DB, value_name = "PATH")]
    pub db: PathBuf,
    /// The RPC socket (default: beside the database).
    #[arg(long, env = scribe_protocol::paths::ENV_SOCKET, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Durability of each commit.
    #[arg(long, value_enum, default_value = "full")]
    pub synchronous: Synchronous,
    /// Writes that may wait in the queue before callers get `Overloaded`.
    #[arg(long, default_value_t = QUEUE_CAPACITY)]
    pub queue_capacity: usize,
    /// Most batches committed in one transaction.
    #[arg(long, default_value_t = MAX_GROUP)]
    pub max_group: usize,
    /// After any stop (SIGTERM, SIGINT, `scribe stop` without --grace), how
    /// long auto-start stays off (e.g. 30s).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    pub stop_grace: Duration,
    /// Exit (after draining) when no call came for this long (e.g. 10m);
    /// off by default. For tools that auto-start the arbiter on demand.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DUR")]
    pub idle_exit: Option<Duration>,
    /// Time one batch may run before it is interrupted and refused.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub batch_budget: Duration,
    /// Longest a write session may wait between two calls (it holds the
    /// writer meanwhile); past it the session is rolled back.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub session_idle: Duration,
    /// Longest a write session may last (default: the batch budget).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DUR")]
    pub session_total: Option<Duration>,
    /// Apply the migrations in this directory (`0001_init.sql`, …) at open,
    /// before the sockets appear; if one fails, the arbiter does not start.
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<PathBuf>,
    /// Idempotency keys are kept at least this long…
    #[arg(long, value_parser = humantime::parse_duration, default_value = "24h")]
    pub key_retention: Duration,
    /// …unless more than this many are stored (the oldest go first). The
    /// arbiter keeps an index of them in memory: about 80 bytes each.
    #[arg(long, default_value_t = 100_000)]
    pub max_keys: u64,
    /// How often the writer prunes old idempotency keys (when idle).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub prune_every: Duration,
    /// How long the socket thread keeps polling after a call before it
    /// sleeps: a caller writing one at a time sends its next request
    /// sooner than a sleeping thread wakes. Backs off when calls do not
    /// come that soon; 0 never polls. Default: SCRIBE_SPIN_US (µs), else
    /// 100µs.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub spin: Option<Duration>,
    /// A setting of the writer connection, applied at open right after
    /// busy_timeout (repeatable), e.g. foreign_keys=on.
    #[arg(long = "pragma", value_name = "NAME=VALUE")]
    pub pragmas: Vec<String>,
    /// A trusted SQLite extension to load at open (repeatable).
    #[arg(long = "load-extension", value_name = "PATH")]
    pub extensions: Vec<PathBuf>,
    /// Also allow this uid to connect (repeatable; the arbiter's own uid
    /// is always allowed).
    #[arg(long = "allow-uid", value_name = "UID")]
    pub allow_uids: Vec<u32>,
    /// Also allow the members of this group (a name or a gid; repeatable):
    /// a peer whose primary or supplementary groups include it when it
    /// connects.
    #[arg(long = "allow-group", value_name = "GROUP")]
    pub allow_groups: Vec<String>,
    /// Make the socket 0660 and owned by this group (its members must
    /// also be allowed, with --allow-uid or --allow-group).
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,
    /// Most connections served at once; more are closed at accept.
    #[arg(long, default_value_t = crate::config::MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Most connections one process may hold; more are refused (named as
    /// such to the caller).
    #[arg(long, default_value_t = crate::config::MAX_PEER_CONNECTIONS)]
    pub max_peer_connections: usize,
    /// Most bytes all requests in flight may hold together (a request
    /// costs at most twice its size plus 32 bytes per parameter value).
    #[arg(long, default_value_t = crate::inflight::MAX_INFLIGHT_BYTES)]
    pub max_inflight_bytes: u64,
    /// Longest string or blob SQLite may make on the writer
    /// (SQLITE_LIMIT_LENGTH): one heavy call cannot outrun the budget.
    #[arg(long, default_value_t = crate::config::MAX_VALUE_BYTES)]
    pub max_value_bytes: u64,
    /// Most heap SQLite may use in the arbiter (0: no limit).
    #[arg(long, default_value_t = crate::config::MAX_HEAP_BYTES)]
    pub max_heap: u64,
    /// A connection with no request for this long is closed (its client
    /// reconnects when it needs to).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    pub idle_timeout: Duration,
    /// A new connection that sends nothing for this long is closed.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub hello_timeout: Duration,
    /// A caller that takes none of its answers for this long is closed.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    pub send_timeout: Duration,
    /// Largest batch in bytes (SQL plus parameters; at most 15 MiB).
    #[arg(long, default_value_t = limits::MAX_BATCH_BYTES as u64)]
    pub max_batch_bytes: u64,
    /// Most statements in one batch.
    #[arg(long, default_value_t = limits::MAX_STATEMENTS as u64)]
    pub max_statements: u64,
    /// Longest SQL text of one statement, in bytes.
    #[arg(long, default_value_t = limits::MAX_SQL_BYTES as u64)]
    pub max_sql_bytes: u64,
    /// Most parameters of one statement.
    #[arg(long, default_value_t = limits::MAX_PARAMS as u64)]
    pub max_params: u64,
    /// Most parameter values in one batch, all statements together.
    #[arg(long, default_value_t = limits::MAX_VALUES as u64)]
    pub max_values: u64,
}

/// Parses the command line, with the config file beside the database
/// first so that the command line wins.
/// Also says whether the command line gives a setting (more than the
/// database and its socket, which is all an auto-starter gives).
fn parse_args(cli: Vec<OsString>) -> Result<(Args, bool), String> {
    use clap::CommandFactory;
    let first = Args::parse_from(&cli);
    let command = Args::command();
    let matches = command.clone().get_matches_from(&cli);
    let settings = command.get_arguments().any(|arg| {
        let id = arg.get_id().as_str();
        !matches!(id, "db" | "socket")
            && matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
    });
    let paths = match Paths::for_db(&first.db, first.socket.clone()) {
        Ok(p) => p,
        // A command line that names no database file, as clap's own
        // usage errors: exit 2.
        Err(e @ scribe_protocol::Error::Directory(_)) => {
            say(format_args!("scribed: {e}"));
            std::process::exit(2);
        }
        Err(e) => return Err(e.to_string()),
    };
    let file = crate::conf_file::args(&paths.config)?;
    if file.is_empty() {
        return Ok((first, settings));
    }
    let mut merged = vec![cli[0].clone()];
    merged.extend(file.into_iter().map(OsString::from));
    merged.extend(cli.into_iter().skip(1));
    Args::try_parse_from(merged)
        .map(|a| (a, settings))
        .map_err(|e| format!("{}: {e}", paths.config.display()))
}

/// Entry point of `scribed`.
pub fn main() -> ExitCode {
    // Not `args()`: a path need not be UTF-8 (SQLite takes any bytes).
    main_with(std::env::args_os().collect())
}

/// Entry point with explicit arguments (the first is the program name):
/// the `scribe` CLI runs the arbiter this way when no `scribed` binary is
/// installed beside it.
pub fn main_with(cli: Vec<OsString>) -> ExitCode {
    keep_freed_memory();
    init_tracing();
    let (args, settings_given) = match parse_args(cli) {
        Ok(a) => a,
        Err(e) => {
            say(format_args!("scribed: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let paths = match Paths::for_db(&args.db, args.socket.clone()) {
        Ok(p) => p,
        Err(e) => {
            say(format_args!("scribed: {e}"));
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
    config.session_idle = args.session_idle.max(Duration::from_millis(1));
    config.session_total = args
        .session_total
        .unwrap_or(args.batch_budget)
        .max(Duration::from_millis(1));
    config.migrations = args.migrations.clone();
    config.record_failed_start = !settings_given;
    config.retention = crate::requests::Retention {
        window: args.key_retention,
        max_keys: args.max_keys,
    };
    for p in &args.pragmas {
        match p.split_once('=') {
            Some((name, value)) => config
                .pragmas
                .push((name.trim().to_owned(), value.trim().to_owned())),
            None => {
                say(format_args!(
                    "scribed: --pragma takes NAME=VALUE, got {p:?}"
                ));
                return ExitCode::FAILURE;
            }
        }
    }
    config.extensions = args.extensions;
    config.prune_every = args.prune_every.max(Duration::from_millis(10));
    if let Some(spin) = args.spin {
        config.spin = spin.min(Duration::from_millis(10));
    }
    config.allowed.uids.extend(args.allow_uids);
    for g in &args.allow_groups {
        match crate::allowed::resolve_group(g) {
            Ok(gid) => config.allowed.gids.push(gid),
            Err(e) => {
                say(format_args!("scribed: {e}"));
                return ExitCode::FAILURE;
            }
        }
    }
    config.socket_group = args.socket_group;
    config.max_connections = args.max_connections.max(1);
    config.max_peer_connections = args.max_peer_connections.max(1);
    config.max_inflight_bytes = args.max_inflight_bytes.max(64 * 1024 * 1024);
    config.max_value_bytes = args.max_value_bytes.clamp(1024, i32::MAX as u64);
    config.max_heap_bytes = args.max_heap;
    config.idle_timeout = args.idle_timeout;
    config.hello_timeout = args.hello_timeout;
    config.send_timeout = args.send_timeout.max(Duration::from_millis(1));
    config.limits = limits::Limits {
        max_batch_bytes: args.max_batch_bytes,
        max_statements: args.max_statements,
        max_sql_bytes: args.max_sql_bytes,
        max_params: args.max_params,
        max_values: args.max_values,
    }
    .clamped();
    match daemon::run(config) {
        Ok(Exit::AlreadyRunning(pid)) => {
            match pid {
                Some(pid) => tell(format_args!("already running (pid {pid})")),
                None => tell(format_args!("already running")),
            }
            ExitCode::SUCCESS
        }
        Ok(Exit::Stopped { .. }) => ExitCode::SUCCESS,
        Err(e) => {
            say(format_args!("scribed: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Writes a line to stderr, which is the arbiter's log when it was started
/// in the background: on a full disk that write fails, and `eprintln!`
/// would panic (exit 101, the reason lost) instead of exiting 1.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// [`say`], on stdout.
fn tell(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Keeps freed memory for reuse instead of handing it back to the kernel
/// after every commit: glibc trims a thread's heap as soon as a few dozen
/// KiB at its top are free, and the writer frees that much each commit,
/// so each commit paid a `madvise` and then page faults to touch the same
/// memory again.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's trimming threshold; it
    // is called before any other thread starts.
    unsafe {
        nix::libc::mallopt(nix::libc::M_TRIM_THRESHOLD, 64 * 1024 * 1024);
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
