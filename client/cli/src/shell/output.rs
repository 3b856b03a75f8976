//! How `scribe shell` prints rows, in the output modes of the sqlite3
//! command line (`.mode table|json|csv|line`), so that its habits carry
//! over: NULL prints empty, reals as SQLite's `%!.15g`, blobs as their
//! bytes (text modes) or `{"$blob": base64}` (JSON).
//!
//! CSV is written by the `csv` crate: RFC 4180, quoting only where a field
//! needs it, where sqlite3 also quotes fields holding a space or non-ASCII
//! text. Both read back as the same values.

use std::fmt::Write as _;

use comfy_table::{Cell, CellAlignment, Table};
use scribe_protocol::Value;

use crate::render;
use crate::Failure;

/// An output mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Boxed ASCII table with a header (sqlite3's `.mode table`).
    Table,
    /// One JSON array per result (sqlite3's `.mode json`).
    Json,
    /// CSV, with a header line while `.headers` is on.
    Csv,
    /// One `name = value` line per column (sqlite3's `.mode line`).
    Line,
}

impl Mode {
    /// The mode named `name`.
    pub fn parse(name: &str) -> Option<Mode> {
        match name {
            "table" => Some(Mode::Table),
            "json" => Some(Mode::Json),
            "csv" => Some(Mode::Csv),
            "line" => Some(Mode::Line),
            _ => None,
        }
    }

    /// The mode's name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Table => "table",
            Mode::Json => "json",
            Mode::Csv => "csv",
            Mode::Line => "line",
        }
    }
}

/// A real as SQLite prints it (`%!.15g`): 15 significant digits, at least
/// one digit after the point, an exponent outside 1e-4..1e15.
pub fn real_text(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{f:.14e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..15).contains(&exp) {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{m}e{sign}{:02}", exp.abs());
    }
    let decimals = usize::try_from(14 - exp).unwrap_or(0);
    trim_zeros(&format!("{f:.decimals$}"))
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

/// A value as text modes show it.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => real_text(*f),
        Value::Text(s) => s.clone(),
        Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

fn json_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) if f.is_finite() => real_text(*f),
        Value::Text(s) => serde_json::Value::from(s.as_str()).to_string(),
        // Not finite, or a blob: as every JSON output writes them.
        Value::Real(_) | Value::Blob(_) => {
            let mut out = Vec::new();
            scribe_protocol::json_answer::write_value(v, &mut out);
            String::from_utf8_lossy(&out).into_owned()
        }
    }
}

/// Prints one statement's rows in `mode`; nothing at all (not even a
/// header) for a result without rows, as sqlite3.
///
/// # Errors
///
/// When standard output cannot be written.
pub fn print(
    mode: Mode,
    headers: bool,
    columns: &[String],
    rows: &[Vec<Value>],
) -> Result<(), Failure> {
    if columns.is_empty() {
        return Ok(());
    }
    match mode {
        Mode::Table if rows.is_empty() => {}
        Mode::Table => outln!("{}", table(columns, rows)),
        Mode::Json if rows.is_empty() => {}
        Mode::Json => {
            let mut out = String::from("[");
            for (i, row) in rows.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                out.push('{');
                for (j, (c, v)) in columns.iter().zip(row).enumerate() {
                    let sep = if j > 0 { "," } else { "" };
                    let name = serde_json::Value::from(c.as_str());
                    let _ = write!(out, "{sep}{name}:{}", json_value(v));
                }
                out.push('}');
            }
            out.push(']');
            outln!("{out}");
        }
        Mode::Csv if rows.is_empty() => {}
        Mode::Csv => {
            let cells: Vec<Vec<String>> =
                rows.iter().map(|r| r.iter().map(cell).collect()).collect();
            let header = headers.then_some(columns);
            // Lines end in CRLF, as RFC 4180 and sqlite3 end them.
            render::csv_records(header, &cells, csv::Terminator::CRLF)?;
        }
        Mode::Line => {
            // sqlite3 pads the names to at least five characters.
            let width = columns
                .iter()
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
                .max(5);
            for (i, row) in rows.iter().enumerate() {
                if i > 0 {
                    outln!("");
                }
                for (c, v) in columns.iter().zip(row) {
                    outln!("{c:>width$} = {}", cell(v));
                }
            }
        }
    }
    Ok(())
}

/// sqlite3's table: `+---+` borders, centred headers (an odd space goes
/// to the right, as sqlite3 puts it), cells to the left; when a cell holds
/// a line break, a border between every two rows, as sqlite3 draws it.
fn table(columns: &[String], rows: &[Vec<Value>]) -> Table {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(cell).collect()).collect();
    let width = |s: &str| s.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .filter_map(|r| r.get(i))
                .map(|s| width(s))
                .fold(width(c), usize::max)
        })
        .collect();
    let multi_line = cells.iter().flatten().any(|s| s.contains('\n'));
    let mut t = Table::new();
    t.load_preset(if multi_line {
        "||--+-++|-+++++++++"
    } else {
        "||--+-++|    ++++++"
    });
    t.set_header(columns.iter().zip(&widths).map(|(c, w)| {
        let left = w.saturating_sub(width(c)) / 2;
        Cell::new(format!("{}{c}", " ".repeat(left))).set_alignment(CellAlignment::Left)
    }));
    for row in cells {
        t.add_row(row);
    }
    t
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
        ] {
            let sqlite: String = c
                .query_row("SELECT printf('%!.15g', ?1)", [f], |r| r.get(0))
                .unwrap();
            assert_eq!(real_text(f), sqlite, "{f:e}");
        }
    }
}
