//! Deadlines and auto-start settings.

use std::path::PathBuf;
use std::time::Duration;

/// Environment variable: `0` (or `false`, `no`, `off`) disables auto-start.
pub const ENV_AUTOSTART: &str = "SCRIBE_AUTOSTART";
/// Environment variable: the `scribed` binary to auto-start.
pub const ENV_ARBITER_BIN: &str = "SCRIBE_ARBITER_BIN";

/// Default time an auto-started arbiter has to answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time a write keeps retrying.
pub const RETRY_FOR: Duration = Duration::from_secs(30);
/// Default deadline of one call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest deadline of one call: a longer one (`--timeout 100000000s`)
/// means "as long as it takes", and is this.
pub const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);

/// How a [`Client`](crate::Client) connects and waits.
#[derive(Clone, Debug)]
pub struct Options {
    /// Start `scribed` when no arbiter answers.
    pub autostart: bool,
    /// How long an auto-started arbiter has to become ready.
    pub ready_timeout: Duration,
    /// Deadline of each call; past it the caller gets `Timeout` (a write's
    /// outcome is then unknown).
    pub call_timeout: Duration,
    /// The `scribed` binary; default: `SCRIBE_ARBITER_BIN`, else beside
    /// the current executable, else on `PATH`.
    pub arbiter_bin: Option<PathBuf>,
    /// The current executable is the `scribe` CLI, which can run the
    /// arbiter itself (`scribe arbiter`): the last resort when no `scribed`
    /// is installed, so a fresh `cargo run --bin scribe` still works.
    pub self_arbiter: bool,
    /// How long [`Client::write`](crate::Client::write) keeps retrying
    /// retryable failures; zero for a single try (and no automatic key).
    pub retry_for: Duration,
    /// How long a caller alone on its connection polls for its answer
    /// before it sleeps (a small write's answer comes sooner than a
    /// sleeping thread wakes); backs off when answers do not come that
    /// soon. Zero never polls. Default: `SCRIBE_SPIN_US` (µs), else 100 µs.
    pub spin: Duration,
    /// How long a connect waits for an arbiter that holds the writer while
    /// it starts (migrations at open; see [`crate::autostart::Waits`]);
    /// default: `call_timeout`. A caller's own wait for the writer (the
    /// CLI's `exec --wait`).
    pub starting_wait: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        let autostart = std::env::var(ENV_AUTOSTART).map_or(true, |v| {
            !matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off"
            )
        });
        Options {
            autostart,
            ready_timeout: READY_TIMEOUT,
            call_timeout: CALL_TIMEOUT,
            arbiter_bin: None,
            self_arbiter: false,
            retry_for: RETRY_FOR,
            spin: scribe_protocol::spin::window_from_env(),
            starting_wait: None,
        }
    }
}
