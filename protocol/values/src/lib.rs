//! scribe's wire values in and out of SQLite statements: binding a
//! request's parameters, reading rows back, running one statement the way
//! a batch runs it. The arbiter and the reader both use this crate, and
//! nothing else of each other, so a value means the same on either path.
//!
//! # Layout
//!
//! One file, one concept: [`is_empty`], [`bind`], [`collect`], [`run`],
//! [`from_sql`] (and their unit tests).

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Statement, ToSql};
use scribe_protocol::{Params, StatementResult, Value};

/// True when `stmt` came from text with no statement in it (blanks,
/// comments, semicolons, a byte-order mark): SQLite prepares it to no
/// statement at all, and stepping one is an "API misuse".
pub fn is_empty(stmt: &Statement<'_>) -> bool {
    stmt.column_count() == 0 && stmt.readonly() && stmt.expanded_sql().is_none()
}

/// Binds `params` to `stmt`, checking that every parameter gets a value.
///
/// # Errors
///
/// `InvalidParameterCount` when positional values do not match the
/// statement; `InvalidParameterName` for a parameter left without a value.
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
            // As sqlite3 does: each parameter of the statement takes the
            // value of its name (given with or without its `:`/`@`/`$`, and
            // `?NNN` the value of `NNN`);
            // names the statement does not use are ignored; a parameter
            // with no value is an error, never a silent NULL.
            // An exact name wins over a bare one (`@a` given both `:a` and
            // `@a`); each is looked up once, not by a scan per parameter.
            let mut exact = std::collections::HashMap::with_capacity(values.len());
            let mut bare = std::collections::HashMap::with_capacity(values.len());
            for (name, v) in values {
                // A name given twice (hand-made JSON can) has no one value.
                if exact.insert(name.as_str(), v).is_some() {
                    return Err(rusqlite::Error::InvalidParameterName(format!(
                        "parameter {name} is given twice"
                    )));
                }
                let b = name.trim_start_matches([':', '@', '$', '?']);
                if !b.is_empty() {
                    bare.entry(b).or_insert(v);
                }
            }
            let find = |want: &str| {
                exact
                    .get(want)
                    .or_else(|| bare.get(want.trim_start_matches([':', '@', '$', '?'])))
                    .copied()
            };
            for idx in 1..=expected {
                let Some(name) = stmt.parameter_name(idx).map(str::to_owned) else {
                    return Err(rusqlite::Error::InvalidParameterName(format!(
                        "parameter {idx} is a bare ? and has no name to look up"
                    )));
                };
                let v = find(&name).ok_or_else(|| {
                    rusqlite::Error::InvalidParameterName(format!("no value for parameter {name}"))
                })?;
                stmt.raw_bind_parameter(idx, Bind(v))?;
            }
            Ok(())
        }
    }
}

/// Rows read from a statement.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Collected {
    /// Column names.
    pub columns: Vec<String>,
    /// Each column's declared type, where it is a table's column.
    pub decltypes: Vec<Option<String>>,
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
    let mut out = Collected::default();
    let mut bytes = 0usize;
    each(
        stmt,
        |s| {
            out.columns = names(s);
            out.decltypes = decltypes(s);
            true
        },
        |values| {
            bytes += values.iter().map(Value::wire_len).sum::<usize>();
            out.rows.push(values);
            out.truncated = bytes > max_bytes;
            !out.truncated
        },
    )?;
    Ok(out)
}

/// A statement's column names.
pub fn names(s: &Statement<'_>) -> Vec<String> {
    s.column_names().map(String::from).collect()
}

/// A statement's columns' declared types.
pub fn decltypes(s: &Statement<'_>) -> Vec<Option<String>> {
    s.columns()
        .map(|c| c.decl_type().map(String::from))
        .collect()
}

/// Runs a bound statement that returns rows, handing over the statement
/// (for its column names and types: [`names`], [`decltypes`]), then each
/// row's values as it is read, never holding more than one row; either
/// callback returns false to stop there.
///
/// The columns are to be read after the first step: a statement compiled before
/// a change to the schema (an `ALTER TABLE … ADD COLUMN` earlier in the
/// same transaction, a cached `SELECT *`) is compiled again by that step,
/// and only then has its new columns.
///
/// # Errors
///
/// SQLite's error while stepping.
pub fn each(
    stmt: &mut Statement<'_>,
    columns: impl FnOnce(&Statement<'_>) -> bool,
    mut row: impl FnMut(Vec<Value>) -> bool,
) -> rusqlite::Result<()> {
    let mut rows = stmt.raw_query();
    let first = match rows.next()? {
        Some(r) => values_of(r)?,
        None => {
            drop(rows);
            columns(stmt);
            return Ok(());
        }
    };
    let Some(running) = rows.as_ref() else {
        return Ok(());
    };
    if !columns(running) || !row(first) {
        return Ok(());
    }
    while let Some(r) = rows.next()? {
        if !row(values_of(r)?) {
            break;
        }
    }
    Ok(())
}

/// A row's values.
fn values_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Vec<Value>> {
    let ncols = r.as_ref().column_count();
    let mut values = Vec::with_capacity(ncols);
    for c in 0..ncols {
        values.push(from_sql(r.get_ref(c)?));
    }
    Ok(values)
}

/// Runs a bound statement of `conn` the way a batch runs it: its rows are
/// collected (a query, or a `RETURNING` clause), and it counts the rows it
/// changed — only when it changed some, since `changes()` keeps the count
/// of the last INSERT/UPDATE/DELETE across DDL and queries. `Ok(None)` when
/// its rows pass `max_bytes`.
///
/// # Errors
///
/// SQLite's error.
pub fn run(
    conn: &Connection,
    stmt: &mut Statement<'_>,
    max_bytes: usize,
) -> rusqlite::Result<Option<StatementResult>> {
    let before = conn.total_changes();
    let mut result = StatementResult::default();
    if stmt.column_count() > 0 {
        let c = collect(stmt, max_bytes)?;
        if c.truncated {
            return Ok(None);
        }
        (result.columns, result.rows, result.decltypes) = (c.columns, c.rows, c.decltypes);
    } else {
        stmt.raw_execute()?;
    }
    result.rows_affected = if conn.total_changes() == before {
        0
    } else {
        conn.changes()
    };
    result.last_insert_rowid = conn.last_insert_rowid();
    Ok(Some(result))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn named(sql: &str, values: &[(&str, i64)]) -> rusqlite::Result<Vec<i64>> {
        let c = Connection::open_in_memory()?;
        let mut stmt = c.prepare(sql)?;
        let params = Params::Named(
            values
                .iter()
                .map(|(n, v)| ((*n).to_owned(), Value::Integer(*v)))
                .collect(),
        );
        bind(&mut stmt, &params)?;
        let mut rows = stmt.raw_query();
        let row = rows.next()?.expect("one row");
        (0..row.as_ref().column_count())
            .map(|i| row.get(i))
            .collect()
    }

    #[test]
    fn an_exact_name_wins_over_a_bare_one() {
        let both = [(":a", 1), ("@a", 2)];
        assert_eq!(named("SELECT :a, @a", &both).unwrap(), [1, 2]);
        assert_eq!(named("SELECT @a, :a", &both).unwrap(), [2, 1]);
        // Bare names still find their parameter; unused names are ignored.
        assert_eq!(
            named("SELECT :x, $y", &[("x", 7), ("y", 8), ("z", 9)]).unwrap(),
            [7, 8]
        );
        assert!(named("SELECT :missing", &[("other", 1)]).is_err());
        // A name given twice has no one value.
        let twice = named("SELECT :a", &[(":a", 1), (":a", 2)]).unwrap_err();
        assert!(twice.to_string().contains(":a is given twice"), "{twice}");
        // sqlite3 looks `?1` up as "1".
        assert_eq!(
            named("SELECT ?2, ?1", &[("1", 5), ("2", 6)]).unwrap(),
            [6, 5]
        );
    }

    #[test]
    fn a_cached_select_star_sees_a_column_added_since_in_its_transaction() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1); BEGIN")
            .unwrap();
        let read = |c: &Connection| {
            let mut stmt = c.prepare_cached("SELECT * FROM t").unwrap();
            collect(&mut stmt, usize::MAX).unwrap()
        };
        assert_eq!(read(&c).columns, ["x"]);
        c.execute_batch("ALTER TABLE t ADD COLUMN z DEFAULT 5")
            .unwrap();
        let after = read(&c);
        assert_eq!(after.columns, ["x", "z"]);
        assert_eq!(after.rows, [[Value::Integer(1), Value::Integer(5)]]);
        // An empty result has them too.
        c.execute_batch("DELETE FROM t; ALTER TABLE t ADD COLUMN w")
            .unwrap();
        assert_eq!(read(&c).columns, ["x", "z", "w"]);
    }
}
