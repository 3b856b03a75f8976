//! Wire values in and out of SQLite statements. The arbiter and the reader
//! both use these, so a value means the same on either path.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Statement, ToSql};
use scribe_protocol::{Params, Value};

/// Binds `params` to `stmt`, checking that every parameter gets a value.
///
/// # Errors
///
/// `InvalidParameterCount` when positional values do not match the
/// statement; `InvalidParameterName` for an unknown name.
pub fn bind(stmt: &mut Statement<'_>, params: &Params) -> rusqlite::Result<()> {
    let expected = stmt.parameter_count();
    match params {
        Params::None | Params::Positional(_) if params.len() != expected => Err(
            rusqlite::Error::InvalidParameterCount(params.len(), expected),
        ),
        Params::None => Ok(()),
        Params::Positional(values) => {
            for (i, v) in values.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, Bind(v))?;
            }
            Ok(())
        }
        Params::Named(values) => {
            let mut bound = std::collections::BTreeSet::new();
            for (name, v) in values {
                let idx = if name.starts_with([':', '@', '$']) {
                    stmt.parameter_index(name)?
                } else {
                    stmt.parameter_index(&format!(":{name}"))?
                };
                let idx = idx.ok_or_else(|| rusqlite::Error::InvalidParameterName(name.clone()))?;
                stmt.raw_bind_parameter(idx, Bind(v))?;
                bound.insert(idx);
            }
            // A parameter left unbound would silently be NULL.
            if bound.len() == expected {
                Ok(())
            } else {
                Err(rusqlite::Error::InvalidParameterCount(
                    bound.len(),
                    expected,
                ))
            }
        }
    }
}

/// Rows read from a statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Collected {
    /// Column names.
    pub columns: Vec<String>,
    /// The rows read (all of them unless `truncated`).
    pub rows: Vec<Vec<Value>>,
    /// True when reading stopped at the byte limit.
    pub truncated: bool,
}

/// Runs a bound statement that returns rows; collects names and values,
/// stopping (with `truncated`) once they pass `max_bytes`.
///
/// # Errors
///
/// SQLite's error while stepping.
pub fn collect(stmt: &mut Statement<'_>, max_bytes: usize) -> rusqlite::Result<Collected> {
    let ncols = stmt.column_count();
    let mut out = Collected {
        columns: stmt.column_names().map(String::from).collect(),
        ..Collected::default()
    };
    let mut bytes = 0usize;
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(ncols);
        for c in 0..ncols {
            let v = from_sql(row.get_ref(c)?);
            bytes += v.wire_len();
            values.push(v);
        }
        out.rows.push(values);
        if bytes > max_bytes {
            out.truncated = true;
            break;
        }
    }
    Ok(out)
}

/// Binds a wire value without copying it.
struct Bind<'a>(&'a Value);

impl ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// Converts a column value to its wire form.
pub fn from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}
