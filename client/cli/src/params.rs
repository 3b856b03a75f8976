//! How a `--param` value's type is chosen.
//!
//! - a JSON literal keeps its JSON type: `42` integer, `1.5` real,
//!   `null` NULL, `true`/`false` integer 1/0, `"42"` text;
//! - `x'00ff'` or `hex:00ff` is a blob;
//! - anything else is text, as written.
//!
//! A value written `:name=V` (or `@name=V`, `$name=V`) is a named parameter.

use scribe_protocol::{Params, Value};

/// The `--param` flags of one statement (`exec`, `query`).
#[derive(Debug, Default, clap::Args)]
pub struct ParamArgs {
    /// A parameter value (repeat in order; `:name=V` for named). Its type:
    /// a JSON literal keeps its type (42, 1.5, null, "text"); x'..' or
    /// hex:.. is a blob; anything else is text.
    #[arg(
        long = "param",
        short = 'p',
        value_name = "V",
        allow_hyphen_values = true
    )]
    pub params: Vec<String>,
}

impl ParamArgs {
    /// The values, typed.
    ///
    /// # Errors
    ///
    /// As [`parse`].
    pub fn parse(&self) -> Result<Params, String> {
        parse(&self.params)
    }
}

/// Parses the `--param` values of one statement.
///
/// # Errors
///
/// When named and positional values are mixed, or a blob is not hex.
pub fn parse(raw: &[String]) -> Result<Params, String> {
    if raw.is_empty() {
        return Ok(Params::None);
    }
    let named = raw.iter().filter(|r| is_named(r)).count();
    if named == 0 {
        return raw
            .iter()
            .map(|r| value(r))
            .collect::<Result<_, _>>()
            .map(Params::Positional);
    }
    if named != raw.len() {
        return Err("mix of named (:name=value) and positional --param values".into());
    }
    raw.iter()
        .map(|r| {
            let (name, v) = r.split_once('=').unwrap_or((r, ""));
            Ok((name.to_owned(), value(v)?))
        })
        .collect::<Result<_, String>>()
        .map(Params::Named)
}

fn is_named(r: &str) -> bool {
    r.starts_with([':', '@', '$'])
        && r.split_once('=').is_some_and(|(n, _)| {
            n.len() > 1 && n[1..].chars().all(|c| c.is_alphanumeric() || c == '_')
        })
}

/// One value.
///
/// # Errors
///
/// When a blob literal is not valid hex.
pub fn value(raw: &str) -> Result<Value, String> {
    if let Some(hex) = raw
        .strip_prefix("hex:")
        .or_else(|| raw.strip_prefix("x'").and_then(|r| r.strip_suffix('\'')))
        .or_else(|| raw.strip_prefix("X'").and_then(|r| r.strip_suffix('\'')))
    {
        return from_hex(hex).map(Value::Blob);
    }
    // A JSON scalar keeps its type (read from its text, so an integer
    // outside 64 bits is an error, never a silent REAL); anything else is
    // text as written.
    match serde_json::from_str::<&serde_json::value::RawValue>(raw) {
        Ok(lit) if !lit.get().trim_start().starts_with(['[', '{']) => {
            scribe_protocol::json_body::value_from_literal(lit.get())
        }
        _ => Ok(Value::Text(raw.to_owned())),
    }
}

fn from_hex(hex: &str) -> Result<Vec<u8>, String> {
    if !hex.len().is_multiple_of(2) {
        return Err(format!("blob {hex:?}: odd number of hex digits"));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| format!("blob {hex:?}: not hex"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_json_literals() {
        assert_eq!(value("42").unwrap(), Value::Integer(42));
        assert_eq!(value("1.5").unwrap(), Value::Real(1.5));
        assert_eq!(value("null").unwrap(), Value::Null);
        assert_eq!(value("true").unwrap(), Value::Integer(1));
        assert_eq!(value("\"42\"").unwrap(), Value::Text("42".into()));
        assert_eq!(
            value("hello world").unwrap(),
            Value::Text("hello world".into())
        );
        assert_eq!(value("x'00ff'").unwrap(), Value::Blob(vec![0, 255]));
        assert_eq!(value("hex:0A").unwrap(), Value::Blob(vec![10]));
        assert!(value("hex:0").is_err());
        assert!(value("99999999999999999999").is_err());
        assert!(value("9223372036854775808").is_err());
        assert_eq!(value("1e3").unwrap(), Value::Real(1000.0));
    }

    #[test]
    fn named_and_positional() {
        assert_eq!(
            parse(&[":id=7".into(), "@v=x".into()]).unwrap(),
            Params::Named(vec![
                (":id".into(), Value::Integer(7)),
                ("@v".into(), "x".into())
            ])
        );
        assert!(parse(&[":id=7".into(), "8".into()]).is_err());
        assert_eq!(
            parse(&["a=b".into()]).unwrap(),
            Params::Positional(vec!["a=b".into()])
        );
    }
}
