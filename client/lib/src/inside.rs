//! Calls made from inside one of this client's own transaction functions.
//!
//! A transaction holds the arbiter's writer until it ends. A write, a
//! begin or a migration of the same client inside its function waits in
//! the queue behind that transaction, which cannot end while the function
//! waits: the session lapsed, the write then committed outside it, and
//! [`crate::Client::transaction`] ran the function again (20 runs and 20
//! writes outside in 30 s, in a probe). Such calls are refused at once.
//! Other tasks and threads writing meanwhile are not concerned: they wait
//! for the transaction, as every writer does.

use std::cell::Cell;
use std::future::Future;

use scribe_protocol::WriteError;

tokio::task_local! {
    /// The client whose transaction function this task is running.
    static INSIDE: usize;
}

thread_local! {
    /// The same for the blocking client's functions, which run on the
    /// caller's thread (0: none).
    static INSIDE_BLOCKING: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` as `client`'s transaction function.
pub(crate) async fn running<F: Future>(client: usize, f: F) -> F::Output {
    INSIDE.scope(client, f).await
}

/// Runs `f` as `client`'s transaction function, on this thread.
pub(crate) fn running_blocking<T>(client: usize, f: impl FnOnce() -> T) -> T {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            INSIDE_BLOCKING.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(INSIDE_BLOCKING.with(|c| c.replace(client)));
    f()
}

/// Refuses `what` when it is called from inside `client`'s own
/// transaction function.
pub(crate) fn refuse_inside(client: usize, what: &str) -> Result<(), WriteError> {
    let inside = INSIDE.try_with(|c| *c == client).unwrap_or(false)
        || INSIDE_BLOCKING.with(|c| c.get() == client);
    if !inside {
        return Ok(());
    }
    Err(WriteError::Refused {
        statement: None,
        reason: format!(
            "{what} inside this client's own transaction function: it would wait for the \
             writer that transaction holds, which it cannot release while the function \
             waits; write with the transaction's execute, or after it ends"
        ),
    })
}
