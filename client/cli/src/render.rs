//! Output for people (tables) and programs (JSON, CSV).

use std::fmt::Write as _;
use std::io::Write as _;

use comfy_table::{presets, Table};
use scribe_protocol::{json, Value, WriteError};
use serde_json::json;

use super::Failure;

/// A value for a table or CSV cell: NULL as `NULL` (tables) or empty (CSV),
/// blobs as `x'..'`.
pub fn value_text(v: &Value, null: &str) -> String {
    match v {
        Value::Null => null.to_owned(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
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
    t.set_header(columns);
    for row in rows {
        t.add_row(row.iter().map(|v| value_text(v, "NULL")));
    }
    t
}

/// Rows as CSV with a header line.
///
/// # Errors
///
/// When standard output cannot be written.
pub fn rows_csv(columns: &[String], rows: &[Vec<Value>]) -> Result<(), Failure> {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|v| value_text(v, "")).collect())
        .collect();
    csv_records(Some(columns), &cells, csv::Terminator::Any(b'\n'))
}

/// Records as CSV, after a header line when there is one.
///
/// # Errors
///
/// When standard output cannot be written.
pub fn csv_records(
    header: Option<&[String]>,
    records: &[Vec<String>],
    end: csv::Terminator,
) -> Result<(), Failure> {
    let mut w = csv::WriterBuilder::new()
        .terminator(end)
        .from_writer(std::io::stdout().lock());
    let io = |e: csv::Error| {
        if let csv::ErrorKind::Io(io) = e.kind() {
            exit_on_closed_pipe(io);
        }
        Failure::Local(format!("cannot write CSV: {e}"))
    };
    if let Some(h) = header {
        w.write_record(h).map_err(io)?;
    }
    for r in records {
        w.write_record(r).map_err(io)?;
    }
    w.flush().map_err(|e| {
        exit_on_closed_pipe(&e);
        Failure::Local(format!("cannot write CSV: {e}"))
    })
}

/// An error as JSON: `{"error":{"category":..,"message":..,"exit_code":..}}`
/// plus `statement`, `sqlite_code` and `retry_after_ms` when they apply.
pub fn error_json(e: &WriteError) -> serde_json::Value {
    let mut obj = json::error(e);
    obj["exit_code"] = e.category().exit_code().into();
    serde_json::json!({ "error": obj })
}

/// Prints a failure: JSON on stdout with `--json`, else a line on stderr.
pub fn failure(f: &Failure, json: bool) {
    match (f, json) {
        (Failure::Category(e), true) => emit(format_args!("{}", error_json(e))),
        (Failure::Category(e), false) => eprintln!("scribe: {e}"),
        (Failure::Local(m), true) => emit(format_args!(
            "{}",
            json!({ "error": { "category": "local", "message": m, "exit_code": 1 } })
        )),
        (Failure::Local(m), false) => eprintln!("scribe: {m}"),
        (Failure::Reported(_), _) => {}
    }
}

/// Prints a JSON value on one line.
pub fn print_json(v: &serde_json::Value) {
    emit(format_args!("{v}"));
}

/// Writes a line to standard output. A closed pipe (`scribe query … |
/// head -1`) ends the program quietly with success, as it ends any Unix
/// filter; nothing is left half-done by then (writes have committed).
pub fn emit(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        exit_on_closed_pipe(&e);
    }
}

/// Exits quietly if `e` is a closed standard output.
pub fn exit_on_closed_pipe(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
}
