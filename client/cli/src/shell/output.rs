//! How `scribe shell` prints rows, in the output modes of the sqlite3
//! command line (`.mode table|list|json|csv|line`), so that its habits carry
//! over: NULL prints empty, reals as SQLite's `%!.15g`, blobs as their
//! bytes (text modes) or `{"$blob": base64}` (JSON).
//!
//! CSV is written by the `csv` crate: RFC 4180, quoting only where a field
//! needs it, where sqlite3 also quotes fields holding a space or non-ASCII
//! text. Both read back as the same values.

use std::fmt::Write as _;

use comfy_table::{Cell, CellAlignment, Table};
use scribe_protocol::Value;

use crate::render::{self, real_text};
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
    /// Values between separators, as they are (sqlite3's `.mode list`,
    /// its default: `|` between columns, a line break after each row).
    List,
}

/// The list mode's separators (sqlite3's `.separator COL ROW`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Separators(pub String, pub String);

impl Default for Separators {
    fn default() -> Self {
        Separators("|".into(), "\n".into())
    }
}

impl Separators {
    /// What `.mode` sets them to, as sqlite3's does: list mode `|` and a
    /// line break, csv mode `,` and CRLF; `None` for the others, which
    /// leave them.
    pub fn for_mode(mode: Mode) -> Option<Separators> {
        match mode {
            Mode::List => Some(Separators::default()),
            Mode::Csv => Some(Separators(",".into(), "\r\n".into())),
            _ => None,
        }
    }

    /// The csv mode's delimiter and line end, as sqlite3 takes them from
    /// `.separator`: one byte each, else a comma and CRLF (`.mode csv`
    /// sets those).
    pub fn csv(&self) -> (u8, csv::Terminator) {
        let col = match self.0.as_bytes() {
            [c] => *c,
            _ => b',',
        };
        let row = match self.1.as_bytes() {
            [r] => csv::Terminator::Any(*r),
            _ => csv::Terminator::CRLF,
        };
        (col, row)
    }
}

impl Mode {
    /// The mode named `name`.
    pub fn parse(name: &str) -> Option<Mode> {
        match name {
            "table" => Some(Mode::Table),
            "json" => Some(Mode::Json),
            "csv" => Some(Mode::Csv),
            "line" => Some(Mode::Line),
            "list" => Some(Mode::List),
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
            Mode::List => "list",
        }
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
        // sqlite3's 15 digits where they read back as the same double;
        // otherwise exactly (as `scribe query --json`): JSON is for
        // programs, and 0.1+0.2 is not 0.3.
        Value::Real(f) if f.is_finite() => {
            let text = real_text(*f);
            if text.parse::<f64>() == Ok(*f) {
                text
            } else {
                exact_json(v)
            }
        }
        Value::Text(s) => serde_json::Value::from(s.as_str()).to_string(),
        // Not finite, or a blob: as every JSON output writes them.
        Value::Real(_) | Value::Blob(_) => exact_json(v),
    }
}

/// A value as every JSON output writes it.
fn exact_json(v: &Value) -> String {
    let mut out = Vec::new();
    scribe_protocol::json_answer::write_value(v, &mut out);
    String::from_utf8_lossy(&out).into_owned()
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
    separators: &Separators,
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
            let header = headers.then_some(columns);
            // Lines end in CRLF, as RFC 4180 and sqlite3 end them, unless
            // `.separator` says otherwise.
            render::csv_rows(header, rows, cell, separators.csv())?;
        }
        Mode::List if rows.is_empty() => {}
        Mode::List => {
            let Separators(col, row) = separators;
            let mut out = String::new();
            if headers {
                out.push_str(&columns.join(col));
                out.push_str(row);
            }
            for r in rows {
                let cells: Vec<String> = r.iter().map(cell).collect();
                out.push_str(&cells.join(col));
                out.push_str(row);
            }
            render::emit_raw(&out);
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
    let shown = |s: String| render::shown(&s).into_owned();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|v| shown(cell(v))).collect())
        .collect();
    let columns: Vec<String> = columns.iter().map(|c| shown(c.clone())).collect();
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
