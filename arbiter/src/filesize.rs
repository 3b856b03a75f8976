//! The file-size limit the arbiter inherits from whoever started it.
//!
//! An auto-started arbiter inherits the limits of the caller that started
//! it: a shell's `ulimit -f` meant for one command became the database's
//! size limit, and the first write past it killed the arbiter with
//! `SIGXFSZ`, without a line in its log; the caller was told only that
//! the connection was lost. So the soft limit is raised to the hard one,
//! and `SIGXFSZ` is ignored: a write past the hard limit fails with
//! `EFBIG`, which SQLite reports as that write's error ("disk I/O
//! error", nothing written), and the arbiter serves on; its log said at
//! start that a limit applies.

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::signal::{signal, SigHandler, Signal};
use tracing::{info, warn};

/// Raises the soft file-size limit to the hard one and ignores `SIGXFSZ`
/// (both process-wide).
pub fn lift() {
    match getrlimit(Resource::RLIMIT_FSIZE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_FSIZE, hard, hard) {
            Ok(()) => info!(from = soft, to = hard, "raised the file-size limit"),
            Err(e) => warn!(error = %e, soft, hard, "cannot raise the file-size limit"),
        },
        Ok((soft, _)) if soft != nix::sys::resource::RLIM_INFINITY => {
            warn!(
                bytes = soft,
                "a file-size limit applies: writes that would grow a file past it fail"
            );
        }
        _ => {}
    }
    // SAFETY: setting a signal's disposition to ignore runs no handler.
    if let Err(e) = unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) } {
        warn!(error = %e, "cannot ignore SIGXFSZ");
    }
}
