//! A statement's parameters in a JSON request: each value read from its
//! literal text (an integer outside the 64-bit range is an error, never a
//! silent REAL; a blob is `{"$blob": "<base64>"}`), their count checked as
//! they arrive, and the caller's input quoted back in errors, bounded.

use std::fmt;

use base64::Engine as _;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::{Params, Value};

/// Longest piece of a caller's input quoted back in an error.
const QUOTE: usize = 40;

/// The input quoted for an error: at most [`QUOTE`] characters.
pub fn quote(text: &str) -> String {
    let mut out: String = text.chars().take(QUOTE).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// A value from the text of one JSON literal (a parameter): `null`,
/// `true`/`false` (1/0), an integer (within 64 bits), a real (a fraction
/// or an exponent), a string, or `{"$blob": "<base64>"}`.
///
/// # Errors
///
/// For arrays, other objects, bad base64 and out-of-range integers.
pub fn value_from_literal(raw: &str) -> Result<Value, String> {
    let text = raw.trim();
    let first = text.bytes().next().unwrap_or(b' ');
    match first {
        b'n' if text == "null" => Ok(Value::Null),
        b't' if text == "true" => Ok(Value::Integer(1)),
        b'f' if text == "false" => Ok(Value::Integer(0)),
        b'"' => serde_json::from_str::<String>(text)
            .map(Value::Text)
            .map_err(|e| format!("bad string: {e}")),
        b'-' | b'0'..=b'9' => number(text),
        b'{' => blob(text),
        _ => Err(format!(
            "a parameter is null, a boolean, a number, a string or {{\"$blob\": \"<base64>\"}}, \
             not {}",
            quote(text)
        )),
    }
}

/// A JSON number literal as an integer or a real, by its text.
fn number(text: &str) -> Result<Value, String> {
    if text.contains(['.', 'e', 'E']) {
        return text
            .parse::<f64>()
            .map(Value::Real)
            .map_err(|_| format!("{} is not a number", quote(text)));
    }
    text.parse::<i64>().map(Value::Integer).map_err(|_| {
        format!(
            "integer {} is outside the 64-bit range SQLite stores; send it as a string, or as \
             a real (with a fraction or an exponent) if rounding is acceptable",
            quote(text)
        )
    })
}

fn blob(text: &str) -> Result<Value, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Blob {
        #[serde(rename = "$blob")]
        blob: String,
    }
    let b: Blob = serde_json::from_str(text).map_err(|_| {
        format!(
            "an object parameter must be {{\"$blob\": \"<base64>\"}}, not {}",
            quote(text)
        )
    })?;
    base64::engine::general_purpose::STANDARD
        .decode(b.blob)
        .map(Value::Blob)
        .map_err(|e| format!("$blob is not base64: {e}"))
}

pub(crate) struct ParamsSeed {
    pub(crate) max: u64,
    pub(crate) index: usize,
}

impl ParamsSeed {
    fn too_many<E: de::Error>(&self) -> E {
        E::custom(format!(
            "refused: statement {}: more than {} parameters (--max-params)",
            self.index + 1,
            self.max
        ))
    }

    fn value<E: de::Error>(&self, raw: &RawValue) -> Result<Value, E> {
        value_from_literal(raw.get())
            .map_err(|e| E::custom(format!("statement {}: {e}", self.index + 1)))
    }
}

impl<'de> DeserializeSeed<'de> for ParamsSeed {
    type Value = Params;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Params, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed {
    type Value = Params;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("params as an array (positional), an object (named) or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Params, E> {
        Ok(Params::None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Params, A::Error> {
        let mut out = Vec::new();
        while let Some(raw) = seq.next_element::<&RawValue>()? {
            if out.len() as u64 >= self.max {
                return Err(self.too_many());
            }
            out.push(self.value(raw)?);
        }
        Ok(Params::Positional(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
        let mut out = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            if out.len() as u64 >= self.max {
                return Err(self.too_many());
            }
            let raw = map.next_value::<&RawValue>()?;
            out.push((name, self.value(raw)?));
        }
        Ok(Params::Named(out))
    }
}
