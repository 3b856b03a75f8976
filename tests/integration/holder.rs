//! Holding the writer deterministically: a write session that begins and
//! then waits for the test's word, so that a test needing the writer busy
//! never depends on how fast the machine is.

use std::process::{Child, Output, Stdio};

use crate::harness::{output_within, Env, COMMAND_TIMEOUT, WORKER};

/// Arbiter flags under which a held session can hold the writer for as
/// long as a test needs (the default lease is about a second).
pub const LONG_LEASE: [&str; 4] = ["--session-idle", "300s", "--session-total", "300s"];

/// A write session that holds the writer until released: a test that
/// needs the writer busy holds it this way, whatever the machine's speed.
pub struct Holder {
    child: Child,
}

impl Env {
    /// Opens a session (inserting `(tag, 0)` into `t`) and returns once it
    /// holds the writer. Start the arbiter with [`LONG_LEASE`].
    pub fn hold_writer(&self, tag: &str) -> Holder {
        let mut holder = self.queue_holder(tag);
        holder.holding();
        holder
    }

    /// Starts a holder's session without waiting for it to begin (it may
    /// wait in the queue behind another); [`Holder::holding`] waits.
    pub fn queue_holder(&self, tag: &str) -> Holder {
        let mut c = self.command(WORKER);
        c.args(["hold-session", tag, "stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Holder {
            child: c.spawn().expect("spawn the holder"),
        }
    }
}

impl Holder {
    /// Returns once the holder's session has begun (it holds the writer).
    pub fn holding(&mut self) {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(self.child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("the holder's first line");
        assert_eq!(line.trim(), "holding", "the holder could not begin");
    }

    /// Lets the session insert `(tag, 1)` and commit; its output.
    pub fn release(mut self) -> Output {
        use std::io::Write;
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"go\n");
        }
        output_within(self.child, COMMAND_TIMEOUT, "the holder")
    }

    /// The holder's process id (to kill it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}
