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

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::frame::{Answer, Reply};
use crate::json_frame::HelloOptions;
use crate::{Receipt, StatementResult, Value};

/// Appends the JSON of `reply` to `out`, as `reply_as(reply,
/// options).to_string()` would give it.
pub fn write_reply(reply: &Reply, options: HelloOptions, out: &mut Vec<u8>) {
    let arrays = options.rows_as_arrays;
    let written = match reply {
        Ok(Answer::Receipt(r)) => serde_json::to_writer(&mut *out, &Ok1(ReceiptJson(r, arrays))),
        Ok(Answer::Executed(s)) => serde_json::to_writer(&mut *out, &Ok1(ResultJson(s, arrays))),
        Ok(Answer::Began(b)) => serde_json::to_writer(&mut *out, &Ok1(BeganJson(b))),
        _ => serde_json::to_writer(&mut *out, &crate::json_frame::reply_as(reply, options)),
    };
    // Writing to a Vec fails only for a key that is not a string, which
    // none of these has.
    debug_assert!(written.is_ok(), "{written:?}");
}

/// `{"ok": ..}`.
struct Ok1<T>(T);

impl<T: Serialize> Serialize for Ok1<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("ok", &self.0)?;
        m.end()
    }
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
pub(crate) struct ReceiptJson<'a>(pub(crate) &'a Receipt, pub(crate) bool);

impl Serialize for ReceiptJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ReceiptJson(r, arrays) = *self;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("replayed", &r.replayed)?;
        m.serialize_entry("results", &Each(&r.results, |x| ResultJson(x, arrays)))?;
        m.serialize_entry("seq", &r.seq)?;
        m.end()
    }
}

/// A statement's result: `{"columns","last_insert_rowid","rows",
/// "rows_affected"}`, its rows as objects or (`.1`) as arrays.
pub(crate) struct ResultJson<'a>(pub(crate) &'a StatementResult, pub(crate) bool);

impl<'a> Serialize for ResultJson<'a> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ResultJson(r, arrays) = *self;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("columns", &r.columns)?;
        m.serialize_entry("last_insert_rowid", &r.last_insert_rowid)?;
        if arrays {
            let array = |row: &'a Vec<Value>| Each(row.as_slice(), ValueJson);
            m.serialize_entry("rows", &Each(&r.rows, array))?;
        } else {
            let object = |row: &'a Vec<Value>| RowObject(&r.columns, row);
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

/// One row as an object keyed by column name: keys sorted, a repeated
/// name keeping its last value.
pub(crate) struct RowObject<'a>(pub(crate) &'a [String], pub(crate) &'a [Value]);

impl Serialize for RowObject<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let by_name: BTreeMap<&str, &Value> = self
            .0
            .iter()
            .map(String::as_str)
            .zip(self.1.iter())
            .collect();
        let mut m = s.serialize_map(Some(by_name.len()))?;
        for (name, v) in by_name {
            m.serialize_entry(name, &ValueJson(v))?;
        }
        m.end()
    }
}

/// A value: `null`, a number, a string, or `{"$blob": "<base64>"}` (a
/// real that is not finite is `null`).
pub(crate) struct ValueJson<'a>(pub(crate) &'a Value);

impl Serialize for ValueJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Integer(i) => s.serialize_i64(*i),
            // Not finite: null, as the tree has it.
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
