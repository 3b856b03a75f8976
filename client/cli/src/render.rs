//! Output for people (tables) and programs (JSON, CSV).

use std::fmt::Write as _;

pub use crate::shown::shown;
use std::io::Write as _;

use comfy_table::{presets, Table};
use scribe_protocol::{json, Value, WriteError};
use serde_json::json;

use super::Failure;

/// A real as SQLite prints it (`%!.15g`): 15 significant digits, at least
/// one digit after the point, an exponent outside 1e-4..1e15.
pub fn real_text(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "Inf" } else { "-Inf" }.into();
    }
    // SQLite prints a negative zero as zero.
    if f == 0.0 {
        return "0.0".into();
    }
    let (digits, exp) = fifteen_digits(f.abs());
    let sign = if f < 0.0 { "-" } else { "" };
    let digits: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    if !(-4..15).contains(&exp) {
        let m = trim_zeros(&format!("{}.{}", &digits[..1], &digits[1..]));
        let e_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{m}e{e_sign}{:02}", exp.abs());
    }
    let text = match usize::try_from(exp) {
        // d…d.d…d: the first exp+1 digits before the point.
        Ok(whole) => format!("{}.{}", &digits[..=whole], &digits[whole + 1..]),
        // 0.000d…d
        Err(_) => format!("0.{}{digits}", "0".repeat((-exp - 1) as usize)),
    };
    format!("{sign}{}", trim_zeros(&text))
}

/// The first 15 significant digits of `f` (positive, finite, not zero),
/// rounded half up on its exact value as SQLite's printf rounds (Rust's
/// own rounding at 15 digits is half to even), and the exponent of the
/// first.
fn fifteen_digits(f: f64) -> ([u8; 15], i32) {
    // 18 digits (cheap to print) tell which way the 16th rounds, unless
    // they read 5, 0, 0 from the 16th on: the exact value may then sit on
    // the tie or just under it, and only more of its digits tell (rare:
    // the exact expansion, which costs several times as much).
    let (mut all, mut exp) = digits_of(f, 17);
    if all[15..18] == [5, 0, 0] {
        (all, exp) = digits_of(f, 40);
    }
    let mut digits = [0u8; 15];
    digits.copy_from_slice(&all[..15]);
    if all[15] >= 5 {
        let mut i = 15;
        loop {
            if i == 0 {
                // 9.99…9 rounded up: 1.00…0, one power of ten more.
                digits = [0; 15];
                digits[0] = 1;
                exp += 1;
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    (digits, exp)
}

/// The first `precision + 1` significant digits of `f`, correctly rounded
/// (at most 41), and the exponent of the first.
fn digits_of(f: f64, precision: usize) -> ([u8; 41], i32) {
    let sci = format!("{f:.precision$e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let mut all = [0u8; 41];
    for (slot, d) in all
        .iter_mut()
        .zip(mantissa.bytes().filter(u8::is_ascii_digit))
    {
        *slot = d - b'0';
    }
    (all, exp.parse().unwrap_or(0))
}

/// Drops trailing zeros after the point, keeping one digit.
fn trim_zeros(s: &str) -> String {
    if !s.contains('.') {
        return format!("{s}.0");
    }
    let t = s.trim_end_matches('0');
    if t.ends_with('.') {
        format!("{t}0")
    } else {
        t.to_owned()
    }
}

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
pub fn failure(f: &Failure, json: bool) {
    match (f, json) {
        (Failure::Category(e), true) => emit(format_args!("{}", error_json(e))),
        (Failure::Category(e), false) => eprintln!("scribe: {e}"),
        (Failure::Read(e), true) => {
            let mut v = error_json(e);
            v["error"]["message"] = read_message(e).into();
            if let Some(o) = v["error"].as_object_mut() {
                o.remove("statement");
            }
            emit(format_args!("{v}"));
        }
        (Failure::Read(e), false) => eprintln!("scribe: {}", read_message(e)),
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
        (Failure::Local(m) | Failure::Usage(m), false) => eprintln!("scribe: {m}"),
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
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        exit_on_closed_pipe(&e);
        // A full disk, say: the output is not all there, so say so and
        // fail (1, a local failure) rather than exit 0.
        eprintln!("scribe: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// [`emit`] without the line break: `text` as it is (the list mode's
/// rows end in their own separator).
pub fn emit_raw(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()) {
        exit_on_closed_pipe(&e);
        eprintln!("scribe: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// Standard output could not take `what`: a closed pipe exits quietly,
/// anything else is a failure.
fn output_failure(what: &str, e: &std::io::Error) -> Failure {
    exit_on_closed_pipe(e);
    Failure::Local(format!("cannot write {what}: {e}"))
}

/// Exits quietly if `e` is a closed standard output.
pub fn exit_on_closed_pipe(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reals_print_as_sqlite_prints_them() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        for f in [
            1.5,
            -3.0,
            1e20,
            1e15,
            1e14,
            123_456.789,
            0.1,
            1e-4,
            1e-5,
            2.0 / 3.0,
            -1.25e-300,
            f64::MAX,
            0.0,
            100.0,
            1.234_567_890_123_456_7e-7,
            -0.0,
            100_000_000_000_000.5,
            0.5,
            9.999_999_999_999_95,
            999_999_999_999_999.5,
        ] {
            let sqlite: String = c
                .query_row("SELECT printf('%!.15g', ?1)", [f], |r| r.get(0))
                .unwrap();
            assert_eq!(real_text(f), sqlite, "{f:e}");
        }
        // Random doubles of every magnitude, and random ties.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = if i % 2 == 0 {
                f64::from_bits(x)
            } else {
                // A half: ties at the 15th digit.
                (x % 1_000_000_000_000_000) as f64 / 10.0 + 0.05
            };
            if !f.is_finite() {
                continue;
            }
            let sqlite: String = c
                .query_row("SELECT printf('%!.15g', ?1)", [f], |r| r.get(0))
                .unwrap();
            assert_eq!(real_text(f), sqlite, "{f:e} ({:#x})", f.to_bits());
        }
    }
}
