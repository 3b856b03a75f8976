//! Output for people (tables) and programs (JSON, CSV).

use std::fmt::Write as _;
use std::io::Write as _;

use base64::Engine as _;
use comfy_table::{presets, Table};
use scribe_protocol::{Receipt, Value, WriteError};
use serde_json::{json, Map};

use super::Failure;

/// A value as JSON: integers and reals as numbers, text as strings, NULL as
/// null, a blob as `{"$blob": "<base64>"}`.
pub fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => json!(i),
        Value::Real(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Text(s) => json!(s),
        Value::Blob(b) => json!({ "$blob": base64::engine::general_purpose::STANDARD.encode(b) }),
    }
}

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

/// Rows as an array of objects (column name → value).
pub fn rows_json(columns: &[String], rows: &[Vec<Value>]) -> serde_json::Value {
    serde_json::Value::Array(
        rows.iter()
            .map(|row| {
                let obj: Map<String, serde_json::Value> = columns
                    .iter()
                    .cloned()
                    .zip(row.iter().map(value_json))
                    .collect();
                serde_json::Value::Object(obj)
            })
            .collect(),
    )
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
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    let io = |e: csv::Error| Failure::Local(format!("cannot write CSV: {e}"));
    w.write_record(columns).map_err(io)?;
    for row in rows {
        w.write_record(row.iter().map(|v| value_text(v, "")))
            .map_err(io)?;
    }
    w.flush()
        .map_err(|e| Failure::Local(format!("cannot write CSV: {e}")))
}

/// A receipt as JSON:
/// `{"seq":N,"replayed":false,"results":[{"rows_affected":N,"last_insert_rowid":N,"rows":[..]}]}`.
pub fn receipt_json(r: &Receipt) -> serde_json::Value {
    json!({
        "seq": r.seq,
        "replayed": r.replayed,
        "results": r.results.iter().map(|s| json!({
            "rows_affected": s.rows_affected,
            "last_insert_rowid": s.last_insert_rowid,
            "rows": rows_json(&s.columns, &s.rows),
        })).collect::<Vec<_>>(),
    })
}

/// An error as JSON: `{"error":{"category":..,"message":..,"exit_code":..}}`
/// plus `statement` and `sqlite_code` when known.
pub fn error_json(e: &WriteError) -> serde_json::Value {
    let mut obj = json!({
        "category": e.category().name(),
        "message": e.to_string(),
        "exit_code": e.category().exit_code(),
    });
    match e {
        WriteError::Sql {
            statement, code, ..
        } => {
            obj["statement"] = json!(statement);
            obj["sqlite_code"] = json!(code);
        }
        WriteError::Conflict { statement, .. } => obj["statement"] = json!(statement),
        WriteError::Overloaded { retry_after_ms, .. } => {
            obj["retry_after_ms"] = json!(retry_after_ms);
        }
        _ => {}
    }
    json!({ "error": obj })
}

/// Prints a failure: JSON on stdout with `--json`, else a line on stderr.
pub fn failure(f: &Failure, json: bool) {
    match (f, json) {
        (Failure::Category(e), true) => println!("{}", error_json(e)),
        (Failure::Category(e), false) => eprintln!("scribe: {e}"),
        (Failure::Local(m), true) => println!(
            "{}",
            json!({ "error": { "category": "local", "message": m, "exit_code": 1 } })
        ),
        (Failure::Local(m), false) => eprintln!("scribe: {m}"),
    }
}

/// Prints a JSON value on one line.
pub fn print_json(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
}
