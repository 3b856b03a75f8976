//! `scribe shell`: an interactive SQL shell in the habits of the sqlite3
//! command line. Reads go straight to the file, writes through the
//! arbiter, and `BEGIN … COMMIT` runs as a write session. Which is which
//! is decided by SQLite when it prepares the statement on the read-only
//! connection, not by reading the text.
//!
//! On a terminal it edits lines and keeps a history (`~/.scribe_history`);
//! otherwise it reads statements from stdin without a prompt, so scripts
//! can pipe into it. An error is printed with its category and the shell
//! goes on (`--bail` stops at the first); the exit code is then that of
//! the last error's category, as for `scribe exec`.

mod counts;
mod dot;
mod import;
mod import_lines;
mod import_names;
mod interrupt;
mod output;
mod route;

use std::io::{BufRead, IsTerminal};

use rustyline::error::ReadlineError;
use scribe_client::script;
use scribe_protocol::WriteError;
use scribe_reader::Reader;

use super::{Ctx, Failure};
pub use output::Mode;

/// `scribe shell` arguments.
#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    /// Stop at the first error (as sqlite3's -bail).
    #[arg(long)]
    pub bail: bool,
    /// The output mode to start in: table, list, json, csv or line.
    #[arg(long, value_parser = ["table", "list", "json", "csv", "line"])]
    pub mode: Option<String>,
}

/// Why a statement or a dot command failed: a category and a message.
#[derive(Debug)]
pub struct Trouble {
    category: &'static str,
    message: String,
    exit: u8,
}

impl From<WriteError> for Trouble {
    fn from(e: WriteError) -> Self {
        Trouble {
            category: e.category().name(),
            exit: e.category().exit_code(),
            message: e.to_string(),
        }
    }
}

impl Trouble {
    /// An SQL error found here, as sqlite3 words it.
    fn sql(message: impl Into<String>) -> Trouble {
        let sql = scribe_protocol::Category::Sql;
        Trouble {
            category: sql.name(),
            exit: sql.exit_code(),
            message: message.into(),
        }
    }

    /// A mistake in a dot command or the shell's own use (exit code 2,
    /// as a usage error of the command line).
    fn usage(message: impl Into<String>) -> Trouble {
        Trouble {
            category: "usage",
            exit: 2,
            message: message.into(),
        }
    }

    /// A failure on this side (output that cannot be written).
    fn local(message: impl Into<String>) -> Trouble {
        Trouble {
            category: "local",
            exit: 1,
            message: message.into(),
        }
    }
}

/// The shell's state.
pub struct Shell<'a> {
    /// Ctrl-C's handler (see [`interrupt`]); declared before `reader` so
    /// that it is removed before the reader it points at closes.
    interrupt: Option<interrupt::Interrupt>,
    ctx: &'a Ctx,
    reader: Reader,
    client: Option<scribe_client::Client>,
    tx: Option<scribe_client::Transaction>,
    /// The transaction the arbiter ended (its lease lapsed): why. Until
    /// COMMIT or ROLLBACK, statements are refused rather than run one by
    /// one in autocommit, so a script's transaction never half-commits.
    ended: Option<String>,
    /// The open transaction's savepoints, oldest first, and whether its
    /// first began it (`SAVEPOINT` outside a transaction: releasing that
    /// one commits).
    savepoints: Vec<String>,
    begun_by_savepoint: bool,
    /// `PRAGMA query_only` as this shell set it: its writes are refused.
    query_only: bool,
    /// What its writes changed, for `changes()` and the like in reads.
    counts: std::sync::Arc<counts::Counts>,
    /// What the statement being run changes, when it writes.
    effect: scribe_reader::Changes,
    mode: Mode,
    headers: bool,
    /// `.separator`: the list mode's, and `.import`'s outside csv mode.
    separators: output::Separators,
    interactive: bool,
    bail: bool,
    /// The exit code of the last error, if any.
    failed: Option<u8>,
    /// Set by `.quit`.
    quit: bool,
    /// `.timeout MS`: how long a write or a `BEGIN` waits for the writer.
    wait_ms: Option<u64>,
    /// `PRAGMA foreign_keys` as last set outside a transaction: sent with
    /// every write and `BEGIN` (`None`: the arbiter's setting).
    foreign_keys: Option<bool>,
    /// How many `.read` files are being read, one inside the other.
    nesting: u8,
    /// Ctrl-C stopped the `.read` files being read.
    stop_reading: bool,
}

/// Runs `scribe shell`.
///
/// # Errors
///
/// When the database cannot be opened; the exit code of the last error
/// when a statement failed.
pub fn run(ctx: &Ctx, args: &ShellArgs) -> Result<(), Failure> {
    let reader = ctx.open_reader().map_err(|e| {
        Failure::Category(WriteError::Unavailable {
            reason: e.to_string(),
        })
    })?;
    let interactive = std::io::stdin().is_terminal();
    // An interactive shell watches once its line editor is set up: the
    // editor installs a SIGINT handler of its own, which would take the
    // signal from a watcher installed before it.
    let interrupt = if interactive {
        None
    } else {
        interrupt::Interrupt::watch(reader.connection(), false)
    };
    let mode = match (&args.mode, ctx.json) {
        (Some(m), _) => Mode::parse(m).unwrap_or(Mode::Table),
        (None, true) => Mode::Json,
        (None, false) => Mode::Table,
    };
    let counts = counts::Counts::install(reader.connection()).map_err(|e| {
        Failure::Category(WriteError::Unavailable {
            reason: e.to_string(),
        })
    })?;
    let mut shell = Shell {
        ctx,
        reader,
        counts,
        effect: scribe_reader::Changes::default(),
        client: None,
        tx: None,
        ended: None,
        savepoints: Vec::new(),
        begun_by_savepoint: false,
        query_only: false,
        mode,
        headers: true,
        separators: output::Separators::for_mode(mode).unwrap_or_default(),
        interactive,
        bail: args.bail,
        failed: None,
        quit: false,
        wait_ms: None,
        foreign_keys: None,
        nesting: 0,
        stop_reading: false,
        interrupt,
    };
    if interactive {
        shell.interact()?;
    } else {
        let mut feed = Feed::default();
        // Line by line as they come (a pipe may be a live session).
        for line in std::io::stdin().lock().split(b'\n') {
            let line = line.map_err(|e| Failure::Local(format!("cannot read stdin: {e}")))?;
            shell.line(&mut feed, &text_line(&line));
            if shell.quit {
                break;
            }
        }
        shell.finish(&mut feed);
    }
    shell.end_transaction();
    match shell.failed {
        None => Ok(()),
        Some(code) => Err(Failure::Reported(code)),
    }
}

/// Lines gathered until they hold a whole statement.
#[derive(Default)]
struct Feed {
    text: String,
    /// The line the gathered text began on.
    first: usize,
    /// Lines read so far.
    lines: usize,
}

impl Shell<'_> {
    fn interact(&mut self) -> Result<(), Failure> {
        let mut editor = rustyline::DefaultEditor::new()
            .map_err(|e| Failure::Local(format!("cannot set up line editing: {e}")))?;
        self.interrupt = interrupt::Interrupt::watch(self.reader.connection(), true);
        let history =
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".scribe_history"));
        if let Some(h) = &history {
            let _ = editor.load_history(h);
        }
        errln!(
            "scribe shell on {}: reads from the file, writes through the arbiter. \
             Enter \".help\" for usage hints.",
            self.ctx.paths.db.display()
        );
        let mut feed = Feed::default();
        while !self.quit {
            // A transaction the arbiter ended is still this shell's until
            // ROLLBACK: its statements are refused meanwhile.
            let open = self.tx.is_some() || self.ended.is_some();
            let prompt = match (feed.text.is_empty(), open) {
                (true, false) => "scribe> ",
                (true, true) => "scribe*> ",
                (false, _) => "   ...> ",
            };
            match editor.readline(prompt) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    self.line(&mut feed, &line);
                }
                Err(ReadlineError::Interrupted) => feed = Feed::default(),
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(Failure::Local(format!("cannot read a line: {e}"))),
            }
        }
        self.finish(&mut feed);
        if let Some(h) = &history {
            let _ = editor.save_history(h);
        }
        Ok(())
    }

    /// Takes one line: a dot command, or more of a statement.
    fn line(&mut self, feed: &mut Feed, line: &str) {
        feed.lines += 1;
        if self.quit || (self.bail && self.failed.is_some()) {
            self.quit = true;
            return;
        }
        // As in sqlite3: between statements, a line that begins with `#`
        // is a comment.
        if feed.text.trim().is_empty() && line.starts_with('#') {
            return;
        }
        if feed.text.trim().is_empty() && line.trim_start().starts_with('.') {
            feed.text.clear();
            let at = feed.lines;
            let done = self.dot(line.trim());
            let failed = done.is_err();
            self.report(at, done);
            // A long `.import` stops at Ctrl-C, and a script with it.
            self.stopped_by_interrupt(failed);
            return;
        }
        if feed.text.trim().is_empty() {
            feed.text.clear();
            feed.first = feed.lines;
        }
        feed.text.push_str(line);
        feed.text.push('\n');
        if script::is_complete(&feed.text) {
            let text = std::mem::take(&mut feed.text);
            self.run_text(feed.first, &text);
        }
    }

    /// Runs the statements of `text`, which began on line `first`, up to
    /// the first that fails.
    fn run_text(&mut self, first: usize, text: &str) {
        let statements = match script::split(text) {
            Ok(s) => s,
            Err(e) => return self.report(first, Err(Trouble::sql(e))),
        };
        for sql in statements {
            let done = self.statement(&sql);
            let failed = done.is_err();
            self.report(first, done);
            if self.stopped_by_interrupt(failed) {
                return;
            }
            if self.bail && self.failed.is_some() {
                self.quit = true;
                return;
            }
            if failed {
                return; // the rest of this input, as sqlite3 skips it
            }
        }
    }

    /// As sqlite3: after Ctrl-C a script stops (with the error's code, or
    /// 130 when the statement was done before it landed); a prompt comes
    /// back, and a `.read` file stops (every level of it). True when the
    /// input in hand stops here.
    fn stopped_by_interrupt(&mut self, failed: bool) -> bool {
        if !self.interrupt.as_ref().is_some_and(|i| i.take_seen()) {
            return false;
        }
        if !self.interactive {
            if !failed {
                self.failed = Some(130);
                crate::render::failed_before(130);
            }
            self.quit = true;
            return true;
        }
        if self.nesting > 0 {
            self.stop_reading = true;
            return true;
        }
        false
    }

    /// End of input: what is left runs as it is, as in sqlite3 (a last
    /// statement needs no `;`; one left open fails as SQLite finds it).
    fn finish(&mut self, feed: &mut Feed) {
        let rest = std::mem::take(&mut feed.text);
        if !rest.trim().is_empty() && !self.quit {
            self.run_text(feed.first, &rest);
        }
    }

    fn report(&mut self, line: usize, done: Result<(), Trouble>) {
        let Err(t) = done else { return };
        if self.interactive {
            errln!("Error ({}): {}", t.category, t.message);
        } else {
            errln!("Error near line {line} ({}): {}", t.category, t.message);
        }
        self.failed = Some(t.exit);
        crate::render::failed_before(t.exit);
    }

    /// Rolls back a session left open at the end (as sqlite3 does).
    fn end_transaction(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = self.ctx.runtime.block_on(tx.rollback());
            if self.interactive {
                errln!("the open transaction was rolled back");
            }
        }
    }

    /// The client, connected (and the arbiter started) on first use.
    fn client(&mut self) -> Result<&scribe_client::Client, Trouble> {
        if self.client.is_none() {
            let c = self.ctx.runtime.block_on(scribe_client::Client::connect(
                &self.ctx.paths,
                &self.ctx.options,
            ))?;
            self.client = Some(c);
        }
        Ok(self.client.as_ref().expect("just connected"))
    }
}

/// One line of input as text: without its `\r\n`, and with bytes that are
/// not UTF-8 replaced (U+FFFD) rather than ending the script there.
fn text_line(line: &[u8]) -> String {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(line).into_owned()
}

/// The lines of a whole file, as [`text_line`] takes each.
fn lines(bytes: &[u8]) -> impl Iterator<Item = String> + '_ {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes
        .split(|&b| b == b'\n')
        .filter(move |_| !bytes.is_empty())
        .map(text_line)
}
