//! Ctrl-C while the shell runs a statement on its reader interrupts that
//! statement (SQLite's `sqlite3_interrupt`, as sqlite3's shell does): an
//! interactive shell goes back to its prompt, a script stops there. At
//! any other moment of a script, Ctrl-C ends the shell (exit 130); an
//! interactive shell's line editor takes it as a key.
//!
//! A thread of its own waits for the signal: once a handler is installed
//! SIGINT no longer ends the process by itself, and the main thread may
//! be inside SQLite.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What the watcher and the shell share.
#[derive(Debug, Default)]
pub struct Interrupt {
    /// A statement runs on the reader now.
    reading: AtomicBool,
    /// A statement was interrupted since the shell last asked.
    seen: AtomicBool,
}

impl Interrupt {
    /// Starts watching for Ctrl-C; `None` when no watcher could be set up
    /// (Ctrl-C then does what it does by default).
    pub fn watch(handle: rusqlite::InterruptHandle, interactive: bool) -> Option<Arc<Interrupt>> {
        let state = Arc::new(Interrupt::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        // Installed here, before the shell reads anything, so that no
        // Ctrl-C finds the process without it.
        let signals = runtime
            .block_on(async {
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            })
            .ok()?;
        let shared = state.clone();
        std::thread::Builder::new()
            .name("ctrl-c".into())
            .spawn(move || {
                let mut signals = signals;
                runtime.block_on(async {
                    while signals.recv().await.is_some() {
                        if shared.reading.load(Ordering::SeqCst) {
                            shared.seen.store(true, Ordering::SeqCst);
                            handle.interrupt();
                        } else if !interactive {
                            std::process::exit(130);
                        }
                    }
                });
            })
            .ok()?;
        Some(state)
    }

    /// Marks a statement running on the reader until the guard drops.
    pub fn reading(self: &Arc<Interrupt>) -> Reading {
        self.reading.store(true, Ordering::SeqCst);
        Reading(self.clone())
    }

    /// Whether a statement was interrupted since the last call.
    pub fn take_seen(&self) -> bool {
        self.seen.swap(false, Ordering::SeqCst)
    }
}

/// A statement running on the reader (see [`Interrupt::reading`]).
pub struct Reading(Arc<Interrupt>);

impl Drop for Reading {
    fn drop(&mut self) {
        self.0.reading.store(false, Ordering::SeqCst);
    }
}
