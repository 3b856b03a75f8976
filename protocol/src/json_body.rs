//! Decoding a JSON write request straight into a [`Batch`].
//!
//! Two promises hold while the body is read, not after:
//!
//! - **Bounded memory.** Counts are checked as elements arrive, so a body
//!   of millions of tiny parameters is refused at the first one past the
//!   limit, having cost little more than its own bytes; an error never
//!   echoes the caller's input back whole.
//! - **Exact types.** A number is read from its literal text: an integer
//!   literal outside the 64-bit range is an error, never a silent REAL.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::json_params::ParamsSeed;
pub use crate::json_params::{quote, value_from_literal};
use crate::limits::Limits;
use crate::{Batch, Statement, WriteError};

/// Decodes a `POST /v1/write` body
/// (`{"statements":[..],"key":"..","wait_ms":N,"foreign_keys":B}`).
///
/// # Errors
///
/// `Protocol` for malformed JSON or a wrong shape; `Refused` (naming the
/// limit) as soon as a count passes `limits`.
pub fn batch(body: &[u8], limits: &Limits) -> Result<Batch, WriteError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let batch = BatchSeed(limits)
        .deserialize(&mut de)
        .and_then(|b| de.end().map(|()| b))
        .map_err(|e| decode_error(&e, "malformed JSON body"))?;
    Ok(batch)
}

/// serde's messages carry our own text; keep them whole but bounded.
fn quote_long(text: &str) -> String {
    text.chars().take(400).collect()
}

/// The statement's index (from 0) and the reason, from a seed's message
/// ("statement N: …", N counted from 1 as messages count).
fn split_statement(r: &str) -> (Option<u32>, &str) {
    match r.strip_prefix("statement ") {
        Some(rest) => match rest.split_once(": ") {
            Some((n, reason)) => (n.parse::<u32>().ok().and_then(|n| n.checked_sub(1)), reason),
            None => (None, r),
        },
        None => (None, r),
    }
}

/// Decodes one statement (`{"sql": .., "params": .., "expect_rows": ..}`),
/// for a write session's `exec`.
///
/// # Errors
///
/// As [`batch`].
pub fn statement(body: &[u8], limits: &Limits) -> Result<Statement, WriteError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    StatementSeed { limits, index: 0 }
        .deserialize(&mut de)
        .and_then(|s| de.end().map(|()| s))
        .map_err(|e| decode_error(&e, "malformed statement"))
}

/// Decodes an array of statements, for a write session's `exec_many`
/// (`--max-statements` and `--max-values` apply, as to a batch).
///
/// # Errors
///
/// As [`batch`].
pub fn statements(body: &[u8], limits: &Limits) -> Result<Vec<Statement>, WriteError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    StatementsSeed(limits)
        .deserialize(&mut de)
        .and_then(|s| de.end().map(|()| s))
        .map_err(|e| decode_error(&e, "malformed statements"))
}

/// A decoding error as the caller is told it: `Refused` naming the limit
/// and the statement it was found in (serde_json's position dropped), or
/// `Protocol` for malformed input.
pub(crate) fn decode_error(e: &serde_json::Error, malformed: &str) -> WriteError {
    let text = e.to_string();
    match text.strip_prefix("refused: ") {
        Some(r) => {
            let r = r.rsplit_once(" at line ").map_or(r, |(head, _)| head);
            let (statement, reason) = split_statement(r);
            WriteError::Refused {
                statement,
                reason: reason.to_owned(),
            }
        }
        None => WriteError::Protocol {
            message: format!("{malformed}: {}", quote_long(&text)),
        },
    }
}

pub(crate) struct BatchSeed<'l>(pub(crate) &'l Limits);

impl<'de> DeserializeSeed<'de> for BatchSeed<'_> {
    type Value = Batch;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Batch, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BatchSeed<'_> {
    type Value = Batch;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"an object {"statements": [..], "key": ".."}"#)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Batch, A::Error> {
        let mut batch = Batch::default();
        // Which fields came: a field given twice is refused, not run with
        // whichever came last.
        let mut fields = Fields::default();
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match k.as_ref() {
                "statements" => {
                    fields.once(0, &k)?;
                    batch.statements = map.next_value_seed(StatementsSeed(self.0))?;
                }
                "key" => {
                    fields.once(1, &k)?;
                    batch.key = map.next_value()?;
                }
                "wait_ms" => {
                    fields.once(2, &k)?;
                    batch.wait_ms = map.next_value()?;
                }
                "foreign_keys" => {
                    fields.once(3, &k)?;
                    batch.foreign_keys = map.next_value()?;
                }
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown field {}: expected statements, key, wait_ms or foreign_keys",
                        quote(other)
                    )))
                }
            }
        }
        if !fields.has(0) {
            return Err(de::Error::missing_field("statements"));
        }
        Ok(batch)
    }
}

/// The fields of one object seen so far, by their index in the visitor.
#[derive(Default)]
struct Fields(u8);

impl Fields {
    fn once<E: de::Error>(&mut self, index: u8, name: &str) -> Result<(), E> {
        if self.has(index) {
            return Err(E::custom(format!("duplicate field {}", quote(name))));
        }
        self.0 |= 1 << index;
        Ok(())
    }

    fn has(&self, index: u8) -> bool {
        self.0 & (1 << index) != 0
    }
}

/// Reads an `exec_many` body (`{"session": N, "statements": [..]}`)
/// where it stands.
pub(crate) struct ExecManySeed<'l>(pub(crate) &'l Limits);

impl<'de> DeserializeSeed<'de> for ExecManySeed<'_> {
    type Value = (u64, Vec<Statement>);
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ExecManySeed<'_> {
    type Value = (u64, Vec<Statement>);
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"an object {"session": N, "statements": [..]}"#)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut session, mut statements) = (None, None);
        let mut fields = Fields::default();
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match k.as_ref() {
                "session" => {
                    fields.once(0, &k)?;
                    session = Some(map.next_value()?);
                }
                "statements" => {
                    fields.once(1, &k)?;
                    statements = Some(map.next_value_seed(StatementsSeed(self.0))?);
                }
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown field {}: expected session or statements",
                        quote(other)
                    )))
                }
            }
        }
        match (session, statements) {
            (Some(session), Some(statements)) => Ok((session, statements)),
            (None, _) => Err(de::Error::missing_field("session")),
            (_, None) => Err(de::Error::missing_field("statements")),
        }
    }
}

struct StatementsSeed<'l>(&'l Limits);

impl<'de> DeserializeSeed<'de> for StatementsSeed<'_> {
    type Value = Vec<Statement>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for StatementsSeed<'_> {
    type Value = Vec<Statement>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of statements")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        let mut values = 0u64;
        while let Some(st) = seq.next_element_seed(StatementSeed {
            limits: self.0,
            index: out.len(),
        })? {
            if out.len() as u64 >= self.0.max_statements {
                return Err(de::Error::custom(format!(
                    "refused: more than {} statements (--max-statements)",
                    self.0.max_statements
                )));
            }
            values += st.params.len() as u64;
            if values > self.0.max_values {
                return Err(de::Error::custom(format!(
                    "refused: more than {} parameter values in one batch (--max-values)",
                    self.0.max_values
                )));
            }
            out.push(st);
        }
        Ok(out)
    }
}

struct StatementSeed<'l> {
    limits: &'l Limits,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for StatementSeed<'_> {
    type Value = Statement;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Statement, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StatementSeed<'_> {
    type Value = Statement;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a statement {"sql": "..", "params": [..] or {..}, "expect_rows": N}"#)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Statement, A::Error> {
        let mut st = Statement::new("");
        let mut fields = Fields::default();
        let once = |fields: &mut Fields, i: u8, k: &str| {
            fields.once(i, k).map_err(|e: A::Error| {
                de::Error::custom(format!("statement {}: {e}", self.index + 1))
            })
        };
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match k.as_ref() {
                "sql" => {
                    once(&mut fields, 0, &k)?;
                    st.sql = map.next_value()?;
                }
                "params" => {
                    once(&mut fields, 1, &k)?;
                    st.params = map.next_value_seed(ParamsSeed {
                        max: self.limits.max_params,
                        index: self.index,
                    })?;
                }
                "expect_rows" => {
                    once(&mut fields, 2, &k)?;
                    st.expect_rows = map.next_value()?;
                }
                other => {
                    return Err(de::Error::custom(format!(
                        "statement {}: unknown field {}: expected sql, params or expect_rows",
                        self.index + 1,
                        quote(other)
                    )))
                }
            }
        }
        if !fields.has(0) {
            return Err(de::Error::custom(format!(
                "statement {}: missing field sql",
                self.index + 1
            )));
        }
        Ok(st)
    }
}

#[cfg(test)]
#[path = "json_body_tests.rs"]
mod tests;
