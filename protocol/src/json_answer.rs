//! The JSON shape of receipts, statement results, rows, values and a
//! session's begin, as `Serialize` types: written straight to bytes for
//! the socket's JSON answers ([`write_reply`]), and made into trees by
//! [`json`](crate::json) for the CLI and HTTP, from the one definition.
//!
//! Building each answer as a tree of `serde_json::Value`s (a map per
//! object, a string per key) and then printing the tree was a quarter of
//! the arbiter's instructions per write from Python (callgrind). The
//! bytes are those the tree prints: keys in sorted order (the tree's
//! maps sort them), a row object keeping a repeated column's last value.

use base64::Engine as _;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::frame::{Answer, Reply};
use crate::json_frame::HelloOptions;
use crate::{Receipt, StatementResult, Value};

/// Appends the JSON of `reply` to `out`, as `reply_as(reply,
/// options).to_string()` would give it (infinite reals aside: see the
/// module's doc).
pub fn write_reply(reply: &Reply, options: HelloOptions, out: &mut Vec<u8>) {
    match reply {
        Ok(answer) => {
            out.extend_from_slice(b"{\"ok\":");
            write_answer(answer, options, out);
            out.push(b'}');
        }
        Err(_) => written(serde_json::to_writer(
            &mut *out,
            &crate::json_frame::reply_as(reply, options),
        )),
    }
}

/// Appends the JSON of an answer (what `{"ok": ..}` holds) to `out`.
pub fn write_answer(answer: &Answer, options: HelloOptions, out: &mut Vec<u8>) {
    let form = Form {
        arrays: options.rows_as_arrays,
        exact: true,
        decltypes: options.decltypes,
    };
    written(match answer {
        Answer::Receipt(r) => serde_json::to_writer(&mut *out, &ReceiptJson(r, form)),
        Answer::Executed(s) => serde_json::to_writer(&mut *out, &ResultJson(s, form)),
        Answer::Began(b) => serde_json::to_writer(&mut *out, &BeganJson(b)),
        other => serde_json::to_writer(&mut *out, &crate::json_frame::answer_as(other, options)),
    });
}

/// An answer's JSON (what `{"ok": ..}` holds), as asked by default.
pub fn answer_bytes(answer: &Answer) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_answer(answer, HelloOptions::default(), &mut out);
    out
}

/// Appends one value (an infinite real as `9.0e+999`).
pub fn write_value(v: &Value, out: &mut Vec<u8>) {
    written(serde_json::to_writer(out, &ValueJson(v, true)));
}

/// Appends one row as an object keyed by column name, in the columns'
/// order, a repeated name as often as it comes (sqlite3's `-json` form)
/// to `out`.
pub fn write_row_object(columns: &[String], row: &[Value], out: &mut Vec<u8>) {
    written(serde_json::to_writer(out, &RowObject(columns, row, true)));
}

/// Writing to a Vec fails only for a key that is not a string, which
/// none of these shapes has.
fn written(r: serde_json::Result<()>) {
    debug_assert!(r.is_ok(), "{r:?}");
}

/// How a shape writes: rows as arrays (else objects), infinite reals as
/// numbers (`exact`, bytes only) or as `null` (trees), and whether a
/// result carries its columns' declared types.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Form {
    pub(crate) arrays: bool,
    pub(crate) exact: bool,
    pub(crate) decltypes: bool,
}

/// A session's begin, as the tree has it:
/// `{"idle_ms","session","total_ms"}`.
pub(crate) struct BeganJson<'a>(pub(crate) &'a crate::Began);

impl Serialize for BeganJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.0;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("idle_ms", &b.lease.idle_ms)?;
        m.serialize_entry("session", &b.session)?;
        m.serialize_entry("total_ms", &b.lease.total_ms)?;
        m.end()
    }
}

/// A receipt: `{"replayed","results","seq"}`.
pub(crate) struct ReceiptJson<'a>(pub(crate) &'a Receipt, pub(crate) Form);

impl Serialize for ReceiptJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ReceiptJson(r, form) = *self;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("replayed", &r.replayed)?;
        m.serialize_entry("results", &Each(&r.results, |x| ResultJson(x, form)))?;
        m.serialize_entry("seq", &r.seq)?;
        m.end()
    }
}

/// A statement's result: `{"columns","last_insert_rowid","rows",
/// "rows_affected"}`, its rows as objects or as arrays.
pub(crate) struct ResultJson<'a>(pub(crate) &'a StatementResult, pub(crate) Form);

impl<'a> Serialize for ResultJson<'a> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ResultJson(r, form) = *self;
        let exact = form.exact;
        let mut m = s.serialize_map(Some(4 + usize::from(form.decltypes)))?;
        m.serialize_entry("columns", &r.columns)?;
        if form.decltypes {
            m.serialize_entry("decltypes", &r.decltypes)?;
        }
        m.serialize_entry("last_insert_rowid", &r.last_insert_rowid)?;
        if form.arrays {
            let array = |row: &'a Vec<Value>| Each(row.as_slice(), move |v| ValueJson(v, exact));
            m.serialize_entry("rows", &Each(&r.rows, array))?;
        } else {
            let object = |row: &'a Vec<Value>| RowObject(&r.columns, row, exact);
            m.serialize_entry("rows", &Each(&r.rows, object))?;
        }
        m.serialize_entry("rows_affected", &r.rows_affected)?;
        m.end()
    }
}

/// Every item of a slice, as `f` presents it, in a JSON array.
struct Each<'a, T, F>(&'a [T], F);

impl<'a, T, U: Serialize, F: Fn(&'a T) -> U> Serialize for Each<'a, T, F> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&(self.1)(item))?;
        }
        seq.end()
    }
}

/// One row as an object keyed by column name, in the columns' order
/// (`.2`: exact, as [`Form`]).
pub(crate) struct RowObject<'a>(
    pub(crate) &'a [String],
    pub(crate) &'a [Value],
    pub(crate) bool,
);

impl Serialize for RowObject<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // In the columns' order, a repeated name as often as it comes (as
        // sqlite3's -json writes them; a parser keeps the last value).
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, v) in self.0.iter().zip(self.1.iter()) {
            m.serialize_entry(name, &ValueJson(v, self.2))?;
        }
        m.end()
    }
}

/// A value: `null`, a number, a string, or `{"$blob": "<base64>"}`. An
/// infinite real is `9.0e+999` or `-9.0e+999` when exact (`.1`), else
/// `null`; a NaN is `null` (SQLite stores none: it binds NaN as NULL).
pub(crate) struct ValueJson<'a>(pub(crate) &'a Value, pub(crate) bool);

impl Serialize for ValueJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Integer(i) => s.serialize_i64(*i),
            Value::Real(f) if f.is_infinite() && self.1 => {
                let text = if *f > 0.0 { "9.0e+999" } else { "-9.0e+999" };
                match serde_json::value::RawValue::from_string(text.into()) {
                    Ok(raw) => raw.serialize(s),
                    Err(_) => s.serialize_unit(),
                }
            }
            Value::Real(f) if !f.is_finite() => s.serialize_unit(),
            Value::Real(f) => s.serialize_f64(*f),
            Value::Text(t) => s.serialize_str(t),
            Value::Blob(b) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(
                    "$blob",
                    &base64::engine::general_purpose::STANDARD.encode(b),
                )?;
                m.end()
            }
        }
    }
}

#[cfg(test)]
#[path = "json_answer_tests.rs"]
mod tests;
