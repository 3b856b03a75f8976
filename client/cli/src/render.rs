//! Output for people (tables) and programs (JSON, CSV).

use std::fmt::Write as _;

pub use crate::real_text::real_text;
pub use crate::shown::shown;
use std::io::Write as _;

use comfy_table::{presets, Table};
use scribe_protocol::{json, Value, WriteError};
use serde_json::json;

use super::Failure;

/// A value for a table or CSV cell: NULL as `NULL` (tables) or empty (CSV),
/// a real as SQLite prints it, blobs as `x'..'`.
pub fn value_text(v: &Value, null: &str) -> String {
    match v {
        Value::Null => null.to_owned(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => real_text(*f),
        Value::Text(s) => s.clone(),
        Value::Blob(b) => {
            b.iter().fold(String::from("x'"), |mut s, byte| {
                let _ = write!(s, "{byte:02x}");
                s
            }) + "'"
        }
    }
}

/// Rows as a table for people.
pub fn rows_table(columns: &[String], rows: &[Vec<Value>]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_HORIZONTAL_ONLY);
    t.set_header(columns.iter().map(|c| shown(c).into_owned()));
    for row in rows {
        t.add_row(
            row.iter()
                .map(|v| shown(&value_text(v, "NULL")).into_owned()),
        );
    }
    t
}

/// Rows as CSV (each value written by `cell`), after a header line when
/// there is one.
///
/// # Errors
///
/// When standard output cannot be written.
pub fn csv_rows(
    header: Option<&[String]>,
    rows: &[Vec<Value>],
    cell: impl Fn(&Value) -> String,
    (delimiter, end): (u8, csv::Terminator),
) -> Result<(), Failure> {
    let mut w = CsvOut::new(delimiter, end);
    if let Some(h) = header {
        w.record(h)?;
    }
    for r in rows {
        w.row(r, &cell)?;
    }
    w.finish()
}

/// CSV written to standard output record by record (a closed pipe ends
/// the process quietly, as for any output).
pub struct CsvOut(csv::Writer<std::io::StdoutLock<'static>>, csv::Terminator);

impl CsvOut {
    /// A writer putting `delimiter` between fields and ending each
    /// record with `end`.
    pub fn new(delimiter: u8, end: csv::Terminator) -> CsvOut {
        CsvOut(
            csv::WriterBuilder::new()
                .delimiter(delimiter)
                .terminator(end)
                .from_writer(std::io::stdout().lock()),
            end,
        )
    }

    /// Writes one record.
    ///
    /// # Errors
    ///
    /// When standard output cannot be written.
    pub fn record<I, T>(&mut self, fields: I) -> Result<(), Failure>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.0.write_record(fields).map_err(|e| {
            if let csv::ErrorKind::Io(io) = e.kind() {
                exit_on_closed_pipe(io);
            }
            Failure::Local(format!("cannot write CSV: {e}"))
        })
    }

    /// Writes one row of values, each as `cell` writes it. A row that is
    /// one NULL is an empty line, as sqlite3 writes it (the CSV writer
    /// writes `""` for a record of one empty field, which is how an empty
    /// text reads, and is kept for one).
    ///
    /// # Errors
    ///
    /// When standard output cannot be written.
    pub fn row(&mut self, row: &[Value], cell: impl Fn(&Value) -> String) -> Result<(), Failure> {
        if let [Value::Null] = row {
            let end: &[u8] = match self.1 {
                csv::Terminator::CRLF => b"\r\n",
                csv::Terminator::Any(b) => &[b][..],
                _ => b"\n",
            };
            return self
                .0
                .flush()
                .and_then(|()| std::io::stdout().lock().write_all(end))
                .map_err(|e| output_failure("CSV", &e));
        }
        self.record(row.iter().map(cell))
    }

    /// Flushes what is left.
    ///
    /// # Errors
    ///
    /// When standard output cannot be written.
    pub fn finish(mut self) -> Result<(), Failure> {
        self.0.flush().map_err(|e| output_failure("CSV", &e))
    }
}

/// A JSON array written to standard output element by element: held in
/// memory up to a size, then streamed (a closed pipe ends the process
/// quietly, as for any output).
pub struct JsonOut {
    held: Vec<u8>,
    hold: usize,
    streaming: bool,
    elements: u64,
}

impl JsonOut {
    /// An array held in memory until it passes `hold` bytes.
    pub fn new(hold: usize) -> JsonOut {
        JsonOut {
            held: b"[".to_vec(),
            hold,
            streaming: false,
            elements: 0,
        }
    }

    /// Adds one element, which `write` appends as JSON.
    ///
    /// # Errors
    ///
    /// When standard output cannot be written.
    pub fn element(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Result<(), Failure> {
        if self.elements > 0 {
            self.held.push(b',');
        }
        self.elements += 1;
        write(&mut self.held);
        if self.held.len() >= self.hold {
            self.streaming = true;
            self.write_held()?;
        }
        Ok(())
    }

    /// True once part of the array has been written.
    pub fn streaming(&self) -> bool {
        self.streaming
    }

    /// Closes the array and writes what is held.
    ///
    /// # Errors
    ///
    /// When standard output cannot be written.
    pub fn finish(mut self) -> Result<(), Failure> {
        self.held.extend_from_slice(b"]\n");
        self.write_held()
    }

    /// Writes what is held and leaves the array unclosed (the result
    /// failed part way).
    pub fn abandon(mut self) {
        self.held.push(b'\n');
        let _ = self.write_held();
    }

    fn write_held(&mut self) -> Result<(), Failure> {
        let mut out = std::io::stdout().lock();
        let written = out.write_all(&self.held).and_then(|()| out.flush());
        self.held.clear();
        written.map_err(|e| output_failure("JSON", &e))
    }
}

/// An error as JSON: `{"error":{"category":..,"message":..,"exit_code":..}}`
/// plus `statement`, `sqlite_code` and `retry_after_ms` when they apply.
pub fn error_json(e: &WriteError) -> serde_json::Value {
    let mut obj = json::error(e);
    obj["exit_code"] = e.category().exit_code().into();
    // A key that does not apply to the error is left out, not null.
    if let Some(o) = obj.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    serde_json::json!({ "error": obj })
}

/// A read's error in words: a write's without the statement's index and
/// "nothing was written".
pub fn read_message(e: &WriteError) -> String {
    match e {
        WriteError::Sql { code, message, .. } => {
            format!("SQL error (SQLite code {code}): {message}")
        }
        other => other.to_string(),
    }
}

/// Prints a failure: JSON on stdout with `--json`, else a line on stderr.
/// A JSON report that cannot be written still exits with the failure's
/// own code (it exited 1, a local failure, hiding a refusal or an SQL
/// error).
pub fn failure(f: &Failure, json: bool) {
    let emit = |args: std::fmt::Arguments<'_>| emit_or_exit(args, i32::from(f.exit_code()));
    match (f, json) {
        (Failure::Category(e), true) => emit(format_args!("{}", error_json(e))),
        (Failure::Category(e), false) => errln!("scribe: {e}"),
        (Failure::Read(e), true) => {
            let mut v = error_json(e);
            v["error"]["message"] = read_message(e).into();
            if let Some(o) = v["error"].as_object_mut() {
                o.remove("statement");
            }
            emit(format_args!("{v}"));
        }
        (Failure::Read(e), false) => errln!("scribe: {}", read_message(e)),
        (Failure::Local(m) | Failure::Usage(m), true) => {
            let category = if matches!(f, Failure::Usage(_)) {
                "usage"
            } else {
                "local"
            };
            emit(format_args!(
                "{}",
                json!({ "error": { "category": category, "message": m, "exit_code": f.exit_code() } })
            ));
        }
        (Failure::Local(m) | Failure::Usage(m), false) => errln!("scribe: {m}"),
        (Failure::Reported(_), _) => {}
    }
}

/// Prints a JSON value on one line.
pub fn print_json(v: &serde_json::Value) {
    emit(format_args!("{v}"));
}

/// Prints an answer's JSON on one line, written as bytes (which, unlike a
/// JSON tree, keep an infinite real: `9.0e+999`, as SQLite's `json()`).
pub fn print_answer(answer: &scribe_protocol::frame::Answer) {
    let line = scribe_protocol::json_answer::answer_bytes(answer);
    emit(format_args!("{}", String::from_utf8_lossy(&line)));
}

/// Writes a line to standard output. A closed pipe (`scribe query … |
/// head -1`) ends the program quietly with success, as it ends any Unix
/// filter; nothing is left half-done by then (writes have committed).
pub fn emit(args: std::fmt::Arguments<'_>) {
    // A full disk, say: the output is not all there, so say so and fail
    // (1, a local failure) rather than exit 0.
    emit_or_exit(args, 1);
}

/// [`emit`], exiting with `code` when standard output cannot take it.
fn emit_or_exit(args: std::fmt::Arguments<'_>, code: i32) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        exit_on_closed_pipe(&e);
        let done = DONE.lock().unwrap_or_else(|p| p.into_inner());
        errln!("scribe: cannot write to standard output: {e}{done}");
        std::process::exit(code);
    }
}

/// [`emit`] without the line break: `text` as it is (the list mode's
/// rows end in their own separator).
pub fn emit_raw(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()) {
        exit_on_closed_pipe(&e);
        errln!("scribe: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// Standard output could not take `what`: a closed pipe exits quietly,
/// anything else is a failure.
fn output_failure(what: &str, e: &std::io::Error) -> Failure {
    exit_on_closed_pipe(e);
    Failure::Local(format!("cannot write {what}: {e}"))
}

/// What was done before the output failed (`; the batch was committed
/// …`), said with the failure: a caller that retries on the exit code
/// alone would write again.
static DONE: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Records what has been done, for a failure to write the report of it.
pub fn done_before(what: &str) {
    *DONE.lock().unwrap_or_else(|p| p.into_inner()) = format!("; {what}");
}

/// The exit code of a failure before standard output closed (0: none).
static FAILED_BEFORE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Records that the run has failed with `code` so far, so that a reader
/// that goes away later does not turn the run into a success.
pub fn failed_before(code: u8) {
    FAILED_BEFORE.store(code, std::sync::atomic::Ordering::Relaxed);
}

/// Exits quietly if `e` is a closed standard output: 0, or the code of
/// an earlier failure (a script whose first statement failed, read by
/// `| head -1`, still fails).
pub fn exit_on_closed_pipe(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(i32::from(
            FAILED_BEFORE.load(std::sync::atomic::Ordering::Relaxed),
        ));
    }
}
