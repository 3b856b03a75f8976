//! SIGTERM and SIGINT before the arbiter serves.
//!
//! The runtime's signal handlers exist only once the database is open and
//! the migrations at open are applied, which may take minutes. Until then
//! the default action killed the arbiter without a stopping marker, so a
//! `systemctl stop` (or Ctrl-C) during a long migration was undone at
//! once: the writers waiting for it started a new arbiter, which ran the
//! migrations again. A handler installed first only notes the signal; the
//! start looks at it between its steps, and a migration running then is
//! interrupted (rolled back whole), so the stop is the stop it would be
//! later: a marker for the stop grace, and exit 0.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The signal noted, 0 for none.
static NOTED: AtomicI32 = AtomicI32::new(0);

extern "C" fn note(signal: nix::libc::c_int) {
    // Only an atomic store: all a signal handler may safely do.
    NOTED.store(signal, Ordering::SeqCst);
}

/// Notes SIGTERM and SIGINT from now on, until the runtime's own handlers
/// take over (see [`received`]).
pub fn install() {
    let action = SigAction::new(
        SigHandler::Handler(note),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores into an atomic.
        if let Err(e) = unsafe { sigaction(signal, &action) } {
            tracing::warn!(%signal, error = %e, "cannot note this signal while starting");
        }
    }
}

/// The name of the stop signal noted so far, if one was.
pub fn received() -> Option<&'static str> {
    match NOTED.load(Ordering::SeqCst) {
        s if s == Signal::SIGTERM as i32 => Some("SIGTERM"),
        s if s == Signal::SIGINT as i32 => Some("SIGINT"),
        _ => None,
    }
}

/// Interrupts what `conn` runs once a stop signal is noted, until the
/// returned guard is dropped (a migration at open).
pub fn interrupt_on_signal(conn: &rusqlite::Connection) -> Watch {
    let handle = conn.get_interrupt_handle();
    let done = Arc::new(AtomicBool::new(false));
    let watching = done.clone();
    let thread = std::thread::Builder::new()
        .name("early-stop".into())
        .spawn(move || {
            while !watching.load(Ordering::SeqCst) {
                // Again and again: SQLite drops an interrupt that comes
                // while no statement runs (between two migrations).
                if received().is_some() {
                    handle.interrupt();
                }
                // Woken at once when the watch ends (see `Drop`).
                std::thread::park_timeout(Duration::from_millis(20));
            }
        })
        .ok();
    Watch { done, thread }
}

/// Ends [`interrupt_on_signal`]'s watch when dropped.
pub struct Watch {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
