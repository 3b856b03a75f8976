//! The JSON form of scribe's types: one contract for the CLI's `--json`
//! output and the HTTP API.
//!
//! | SQLite | JSON |
//! | --- | --- |
//! | NULL | `null` |
//! | INTEGER | a number without fraction (booleans are taken as 1 and 0) |
//! | REAL | a number with a fraction or exponent (an infinite one is `9.0e+999` or `-9.0e+999` where written as bytes, `null` in a tree: see [`json_answer`](crate::json_answer)) |
//! | TEXT | a string |
//! | BLOB | `{"$blob": "<base64>"}` |

use base64::Engine as _;
use serde_json::{json, Value as Json};

use crate::json_answer::{Form, ReceiptJson, ResultJson, ValueJson};
use crate::{Params, Receipt, Status, Value, WriteError};

/// A value as JSON.
pub fn from_value(v: &Value) -> Json {
    tree(&ValueJson(v, false))
}

/// The tree of what `shape` writes (the shapes are written straight to
/// bytes on the socket; see [`json_answer`](crate::json_answer)).
fn tree(shape: &impl serde::Serialize) -> Json {
    // Every key is a string and every number fits: this cannot fail.
    serde_json::to_value(shape).unwrap_or(Json::Null)
}

/// A JSON value as a SQLite value.
///
/// # Errors
///
/// For arrays, objects other than `{"$blob": ..}` and bad base64.
pub fn to_value(j: &Json) -> Result<Value, String> {
    Ok(match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Integer(i64::from(*b)),
        Json::Number(n) => match (n.as_i64(), n.is_u64()) {
            (Some(i), _) => Value::Integer(i),
            (None, true) => {
                return Err(format!(
                    "integer {n} is outside the 64-bit range SQLite stores; send it as text"
                ))
            }
            (None, false) => Value::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Text(s.clone()),
        Json::Object(o) if o.len() == 1 && o.contains_key("$blob") => match &o["$blob"] {
            Json::String(b64) => Value::Blob(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| format!("$blob is not base64: {e}"))?,
            ),
            _ => return Err("$blob takes a base64 string".into()),
        },
        other => {
            return Err(format!(
                "a parameter is null, a number, a string or {{\"$blob\": \"<base64>\"}}, not {}",
                crate::json_body::quote(&other.to_string())
            ))
        }
    })
}

/// Parameters from JSON: an array (positional), an object (named), or
/// null/absent (none).
///
/// # Errors
///
/// As [`to_value`], or when `params` is neither.
pub fn to_params(j: Option<&Json>) -> Result<Params, String> {
    match j {
        None | Some(Json::Null) => Ok(Params::None),
        Some(Json::Array(a)) => a
            .iter()
            .map(to_value)
            .collect::<Result<_, _>>()
            .map(Params::Positional),
        Some(Json::Object(o)) => o
            .iter()
            .map(|(k, v)| Ok((k.clone(), to_value(v)?)))
            .collect::<Result<_, String>>()
            .map(Params::Named),
        Some(other) => Err(format!(
            "params is an array or an object, not {}",
            crate::json_body::quote(&other.to_string())
        )),
    }
}

/// One statement's result, its rows as objects or (`arrays`) as arrays,
/// as a tree (an infinite real is `null` there: outputs write results as
/// bytes, [`json_answer::write_answer`](crate::json_answer::write_answer)).
pub fn statement_result_as(s: &crate::StatementResult, arrays: bool) -> Json {
    tree(&ResultJson(
        s,
        Form {
            arrays,
            exact: false,
            decltypes: false,
        },
    ))
}

/// A receipt,
/// `{"seq":N,"replayed":false,"results":[{"rows_affected":N,"last_insert_rowid":N,"columns":[..],"rows":[{..}]}]}`,
/// its rows as objects or (`arrays`) as arrays, as a tree (see
/// [`statement_result_as`]).
pub fn receipt_as(r: &Receipt, arrays: bool) -> Json {
    tree(&ReceiptJson(
        r,
        Form {
            arrays,
            exact: false,
            decltypes: false,
        },
    ))
}

/// An error: `{"category":..,"message":..}` plus `statement`,
/// `sqlite_code`, `sqlite_message`, `rolled_back` and `retry_after_ms`
/// when they apply.
pub fn error(e: &WriteError) -> Json {
    error_for(e, crate::Undone::Call)
}

/// [`error`] for a call that undid `undone` (a write session's statement
/// says that what ran before it stands).
pub fn error_for(e: &WriteError, undone: crate::Undone) -> Json {
    let mut obj = json!({
        "category": e.category().name(),
        "message": e.message(undone),
    });
    match e {
        WriteError::Sql {
            statement,
            code,
            message,
        }
        | WriteError::RolledBack {
            statement,
            code,
            message,
        } => {
            obj["statement"] = json!(statement);
            obj["sqlite_code"] = json!(code);
            // SQLite's own words, for drivers that raise them as sqlite3 does.
            obj["sqlite_message"] = json!(WriteError::sqlite_words(message));
            if matches!(e, WriteError::RolledBack { .. }) {
                // The write session is over: a driver's transaction is too.
                obj["rolled_back"] = json!(true);
            }
        }
        WriteError::Conflict { statement, .. } | WriteError::Refused { statement, .. } => {
            obj["statement"] = json!(statement);
        }
        WriteError::Overloaded {
            retry_after_ms,
            reason,
        } => {
            obj["retry_after_ms"] = json!(retry_after_ms);
            if reason.starts_with(crate::wire_error::OUTSIDE_WRITER) {
                obj["sqlite_code"] = json!(5);
                obj["sqlite_message"] = json!("database is locked");
            }
        }
        WriteError::Busy { waited_ms, .. } => {
            obj["waited_ms"] = json!(waited_ms);
            // SQLITE_BUSY: what SQLite says after its busy timeout, for
            // drivers that raise it as sqlite3 does.
            obj["sqlite_code"] = json!(5);
            obj["sqlite_message"] = json!("database is locked");
        }
        _ => {}
    }
    obj
}

/// The status report.
pub fn status(s: &Status) -> Json {
    serde_json::to_value(s).unwrap_or(Json::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        for v in [
            Value::Null,
            Value::Integer(-7),
            Value::Real(1.5),
            Value::Text("é".into()),
            Value::Blob(vec![0, 255, 7]),
        ] {
            assert_eq!(to_value(&from_value(&v)).unwrap(), v);
        }
        assert_eq!(to_value(&json!(true)).unwrap(), Value::Integer(1));
        assert!(to_value(&json!([1])).is_err());
        assert!(to_value(&json!({"$blob": "%%"})).is_err());
        assert_eq!(
            to_params(Some(&json!({":id": 1}))).unwrap(),
            Params::Named(vec![(":id".into(), Value::Integer(1))])
        );
    }

    #[test]
    fn an_error_sqlite_rolled_back_with_says_so_beside_its_code() {
        let sql = |rolled_back| {
            let (statement, code, message) =
                (Some(2), 2067, "UNIQUE constraint failed: t.v".into());
            error(&if rolled_back {
                WriteError::RolledBack {
                    statement,
                    code,
                    message,
                }
            } else {
                WriteError::Sql {
                    statement,
                    code,
                    message,
                }
            })
        };
        let (plain, rolled) = (sql(false), sql(true));
        for body in [&plain, &rolled] {
            assert_eq!(body["category"], "sql");
            assert_eq!(body["sqlite_code"], 2067);
            assert_eq!(body["statement"], 2);
            assert_eq!(body["sqlite_message"], "UNIQUE constraint failed: t.v");
        }
        assert_eq!(rolled["rolled_back"], true);
        assert!(plain.get("rolled_back").is_none());
    }
}
