//! Ctrl-C while the shell runs a statement on its reader interrupts that
//! statement (SQLite's `sqlite3_interrupt`, called from the signal handler
//! as sqlite3's own shell calls it): an interactive shell goes back to its
//! prompt, a script (or a file an interactive shell `.read`s) stops
//! there. At any other moment of a script, Ctrl-C ends the shell (exit
//! 130); an interactive shell's line editor reads it as a key.
//!
//! The handler replaces whatever was installed before it (the line
//! editor installs one of its own when it is made, which would report a
//! Ctrl-C pressed during a query again at the next prompt), and is
//! removed, the default restored, before the reader it points at closes.

use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use rusqlite::ffi;

/// The reader's connection while a handler is installed.
static DB: AtomicPtr<ffi::sqlite3> = AtomicPtr::new(std::ptr::null_mut());
/// A statement runs on the reader now.
static READING: AtomicBool = AtomicBool::new(false);
/// A statement was interrupted since the shell last asked.
static SEEN: AtomicBool = AtomicBool::new(false);
/// A Ctrl-C between statements ends the shell (a script).
static ENDS: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: nix::libc::c_int) {
    // Only what a signal handler may do: atomics, sqlite3_interrupt (which
    // sets a flag), _exit.
    if READING.load(Ordering::SeqCst) {
        SEEN.store(true, Ordering::SeqCst);
        let db = DB.load(Ordering::SeqCst);
        if !db.is_null() {
            // SAFETY: `db` is the reader's open connection: the handler
            // is removed before it closes (`Interrupt::drop`).
            unsafe { ffi::sqlite3_interrupt(db) };
        }
    } else if ENDS.load(Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { nix::libc::_exit(130) };
    } else {
        // Interactive, between statements (of a `.read` file, say): the
        // file stops after the statement in hand.
        SEEN.store(true, Ordering::SeqCst);
    }
}

/// The installed handler; dropping it restores the default.
#[derive(Debug)]
pub struct Interrupt(());

impl Interrupt {
    /// Installs the handler for `conn` (the reader's connection, which
    /// must outlive the returned value); a script (`!interactive`) ends
    /// at a Ctrl-C between statements. `None` when it could not be
    /// installed (Ctrl-C then does what it does by default).
    pub fn watch(conn: &rusqlite::Connection, interactive: bool) -> Option<Interrupt> {
        // SAFETY: the handle is only passed to sqlite3_interrupt, while
        // the connection is open (see above).
        DB.store(unsafe { conn.handle() }, Ordering::SeqCst);
        ENDS.store(!interactive, Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(on_sigint),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler does only async-signal-safe work.
        unsafe { sigaction(Signal::SIGINT, &action) }.ok()?;
        Some(Interrupt(()))
    }

    /// Marks a statement running on the reader until the guard drops.
    pub fn reading(&self) -> Reading {
        READING.store(true, Ordering::SeqCst);
        Reading(())
    }

    /// Whether Ctrl-C came since [`Interrupt::take_seen`] was last
    /// called, leaving it to be taken (a long `.import` stops between its
    /// batches).
    pub fn seen(&self) -> bool {
        SEEN.load(Ordering::SeqCst)
    }

    /// Whether a statement was interrupted since the last call.
    pub fn take_seen(&self) -> bool {
        SEEN.swap(false, Ordering::SeqCst)
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
        // SAFETY: restoring the default action.
        let _ = unsafe { sigaction(Signal::SIGINT, &default) };
        DB.store(std::ptr::null_mut(), Ordering::SeqCst);
    }
}

/// A statement running on the reader (see [`Interrupt::reading`]).
pub struct Reading(());

impl Drop for Reading {
    fn drop(&mut self) {
        READING.store(false, Ordering::SeqCst);
    }
}
