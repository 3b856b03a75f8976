//! The shapes written straight to bytes, and the trees made from them,
//! against the trees built by hand that they replaced (kept here as the
//! reference): the same JSON, for chosen edge cases and for random
//! receipts; but an infinite real, which the bytes write as `9.0e+999`
//! where the trees hold `null`.

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{json, Map, Value as Json};

use super::*;
use crate::json_frame::reply_as;
use crate::WriteError;

/// The reference: the answers as the hand-built trees had them.
mod reference {
    use super::*;

    /// Stands for an infinite real in a reference tree for the bytes,
    /// replaced by its number once printed (see [`exact_text`]).
    pub const INF: &str = "\u{0}+inf\u{0}";
    pub const NEG_INF: &str = "\u{0}-inf\u{0}";

    /// Bytes parsed (the infinite reals as stand-ins) and printed again,
    /// so that two texts compare whatever their objects' keys' order (the
    /// bytes keep the columns' order, the trees sort them; [`row_text`]
    /// checks the order, and each value's bytes). Both sides go through
    /// the same parse, whose last digit of a real may differ from the text.
    pub fn canonical(bytes: &str) -> String {
        let quoted = |s: &str| Json::from(s).to_string();
        let swapped = bytes
            .replace("-9.0e+999", &quoted(NEG_INF))
            .replace("9.0e+999", &quoted(INF));
        exact_text(&serde_json::from_str(&swapped).expect("the bytes parse"))
    }

    /// One row as an object, byte for byte: the columns in order, a
    /// repeated name as often as it comes.
    pub fn row_text(columns: &[String], row: &[Value]) -> String {
        let entries: Vec<String> = columns
            .iter()
            .zip(row)
            .map(|(c, v)| format!("{}:{}", Json::from(c.as_str()), exact_text(&value(v, true))))
            .collect();
        format!("{{{}}}", entries.join(","))
    }

    /// The bytes' reference printed: the stand-ins made numbers.
    pub fn exact_text(j: &Json) -> String {
        let quoted = |s: &str| Json::from(s).to_string();
        j.to_string()
            .replace(&quoted(INF), "9.0e+999")
            .replace(&quoted(NEG_INF), "-9.0e+999")
    }

    pub fn value(v: &Value, exact: bool) -> Json {
        match v {
            Value::Real(f) if exact && f.is_infinite() => {
                json!(if *f > 0.0 { INF } else { NEG_INF })
            }
            Value::Null => Json::Null,
            Value::Integer(i) => json!(i),
            Value::Real(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Into::into),
            Value::Text(s) => json!(s),
            Value::Blob(b) => {
                json!({ "$blob": base64::engine::general_purpose::STANDARD.encode(b) })
            }
        }
    }

    pub fn row_object(columns: &[String], row: &[Value], exact: bool) -> Json {
        let values = row.iter().map(|v| value(v, exact));
        let obj: Map<String, Json> = columns.iter().cloned().zip(values).collect();
        Json::Object(obj)
    }

    pub fn result(s: &StatementResult, arrays: bool, exact: bool) -> Json {
        let rows: Vec<Json> = if arrays {
            let array =
                |row: &Vec<Value>| Json::Array(row.iter().map(|v| value(v, exact)).collect());
            s.rows.iter().map(array).collect()
        } else {
            s.rows
                .iter()
                .map(|row| row_object(&s.columns, row, exact))
                .collect()
        };
        json!({
            "rows_affected": s.rows_affected,
            "last_insert_rowid": s.last_insert_rowid,
            "columns": s.columns,
            "rows": rows,
        })
    }

    /// One answer, or `None` for those still built as trees.
    pub fn answer(reply: &Reply, arrays: bool, exact: bool) -> Option<Json> {
        let ok = match reply {
            Ok(Answer::Receipt(r)) => json!({
                "seq": r.seq,
                "replayed": r.replayed,
                "results": r.results.iter().map(|s| result(s, arrays, exact)).collect::<Vec<_>>(),
            }),
            Ok(Answer::Executed(s)) => result(s, arrays, exact),
            Ok(Answer::Began(b)) => json!({
                "session": b.session,
                "idle_ms": b.lease.idle_ms,
                "total_ms": b.lease.total_ms,
            }),
            _ => return None,
        };
        Some(json!({ "ok": ok }))
    }
}

/// `reply` written straight to bytes, and as the tree `reply_as` makes,
/// against the reference (the tree itself for answers still built so).
fn both(reply: &Reply) {
    for rows_as_arrays in [false, true] {
        let options = HelloOptions {
            rows_as_arrays,
            decltypes: false,
        };
        let tree = reply_as(reply, options);
        let want = reference::answer(reply, rows_as_arrays, false).unwrap_or_else(|| tree.clone());
        assert_eq!(tree, want, "arrays: {rows_as_arrays}");
        let want_bytes = reference::answer(reply, rows_as_arrays, true)
            .map_or_else(|| tree.to_string(), |j| reference::exact_text(&j));
        let mut direct = Vec::new();
        write_reply(reply, options, &mut direct);
        let want_bytes = reference::canonical(&want_bytes);
        assert_eq!(
            reference::canonical(&String::from_utf8(direct).unwrap()),
            want_bytes,
            "arrays: {rows_as_arrays}"
        );
        if let Ok(answer) = reply {
            let mut inner = Vec::new();
            write_answer(answer, options, &mut inner);
            let inner = String::from_utf8(inner).unwrap();
            assert_eq!(
                reference::canonical(&format!("{{\"ok\":{inner}}}")),
                want_bytes
            );
        }
    }
}

fn result(columns: &[&str], rows: Vec<Vec<Value>>) -> StatementResult {
    StatementResult {
        rows_affected: 3,
        last_insert_rowid: -9,
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        rows,
        decltypes: Vec::new(),
    }
}

#[test]
fn edge_cases_print_as_the_tree_prints_them() {
    let values = vec![
        Value::Null,
        Value::Integer(i64::MIN),
        Value::Integer(i64::MAX),
        Value::Real(1.0),
        Value::Real(-0.0),
        Value::Real(1e300),
        Value::Real(f64::NAN),
        Value::Real(f64::INFINITY),
        Value::Real(f64::NEG_INFINITY),
        Value::Real(5e-324),
        Value::Text("é \"q\" \\ \n\t\u{1} \u{2028} 😀".into()),
        Value::Blob(vec![]),
        Value::Blob(vec![0, 255, 7, 8]),
    ];
    let names: Vec<String> = (0..values.len()).map(|i| format!("c{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let wide = result(&names, vec![values.clone(), values]);
    // A repeated name (a parser keeps its last value); names that sort
    // apart from their order, and that need escaping.
    let dup = result(
        &["b", "a", "b", "\"x\"", "é", "A"],
        vec![vec![
            Value::Integer(1),
            Value::Integer(2),
            Value::Integer(3),
            Value::Null,
            Value::Text("t".into()),
            Value::Real(0.5),
        ]],
    );
    let empty = StatementResult::default();
    for r in [&wide, &dup, &empty] {
        both(&Ok(Answer::Executed(r.clone())));
        for row in &r.rows {
            for v in row {
                assert_eq!(
                    crate::json::from_value(v),
                    reference::value(v, false),
                    "{v:?}"
                );
            }
            let mut object = Vec::new();
            write_row_object(&r.columns, row, &mut object);
            assert_eq!(
                String::from_utf8(object).unwrap(),
                reference::row_text(&r.columns, row)
            );
        }
    }
    both(&Ok(Answer::Receipt(Receipt {
        seq: u64::MAX,
        results: vec![wide, dup, empty],
        replayed: true,
    })));
    both(&Ok(Answer::Receipt(Receipt::default())));
    for (session, idle_ms, total_ms) in [(0, 0, 0), (7, 1_000, 5_000), (u64::MAX, u64::MAX, 1)] {
        both(&Ok(Answer::Began(crate::Began {
            session,
            lease: crate::Lease { idle_ms, total_ms },
        })));
    }
    // Answers that still go through the tree.
    both(&Ok(Answer::RolledBack));
    both(&Err(WriteError::Sql {
        statement: Some(2),
        code: 1555,
        message: "UNIQUE constraint failed: t.v".into(),
    }));
    both(&Err(WriteError::Overloaded {
        reason: "full".into(),
        retry_after_ms: 20,
    }));
}

#[test]
fn infinite_reals_are_written_as_sqlite_json_writes_them() {
    // SQLite's own `json()` writes ±9.0e+999; Python's and JavaScript's
    // JSON parsers read them back as infinities. NaN: SQLite stores none.
    let r = result(
        &["p", "n", "nan", "x"],
        vec![vec![
            Value::Real(f64::INFINITY),
            Value::Real(f64::NEG_INFINITY),
            Value::Real(f64::NAN),
            Value::Real(1.5),
        ]],
    );
    let mut out = Vec::new();
    write_reply(
        &Ok(Answer::Executed(r.clone())),
        HelloOptions {
            rows_as_arrays: true,
            decltypes: false,
        },
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"ok":{"columns":["p","n","nan","x"],"last_insert_rowid":-9,"rows":[[9.0e+999,-9.0e+999,null,1.5]],"rows_affected":3}}"#
    );
    let mut out = Vec::new();
    write_row_object(&r.columns, &r.rows[0], &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"p":9.0e+999,"n":-9.0e+999,"nan":null,"x":1.5}"#
    );
    // A tree has no infinity.
    assert_eq!(
        crate::json::from_value(&Value::Real(f64::INFINITY)),
        Json::Null
    );
}

#[test]
fn declared_types_come_only_to_a_caller_that_asked() {
    let mut r = result(&["a", "b"], vec![vec![Value::Integer(1), Value::Null]]);
    r.decltypes = vec![Some("TIMESTAMP".into()), None];
    let hello = crate::json_frame::hello_options(br#"{"hello":{"version":7,"decltypes":true}}"#);
    assert!(hello.decltypes && !hello.rows_as_arrays);
    let mut out = Vec::new();
    write_reply(&Ok(Answer::Executed(r.clone())), hello, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"ok":{"columns":["a","b"],"decltypes":["TIMESTAMP",null],"last_insert_rowid":-9,"rows":[{"a":1,"b":null}],"rows_affected":3}}"#
    );
    let mut out = Vec::new();
    write_reply(&Ok(Answer::Executed(r)), HelloOptions::default(), &mut out);
    assert!(!String::from_utf8(out).unwrap().contains("decltypes"));
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Integer),
        any::<f64>().prop_map(Value::Real),
        any::<String>().prop_map(Value::Text),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Blob),
    ]
}

fn statement_result() -> impl Strategy<Value = StatementResult> {
    // Few distinct names, so that repeats are common.
    let names = proptest::collection::vec("[ab\"é]{0,2}", 0..5);
    (names, any::<u64>(), any::<i64>(), 0..4usize).prop_flat_map(|(columns, n, id, rows)| {
        let width = columns.len();
        proptest::collection::vec(proptest::collection::vec(value(), width), rows).prop_map(
            move |rows| StatementResult {
                rows_affected: n,
                last_insert_rowid: id,
                columns: columns.clone(),
                rows,
                decltypes: Vec::new(),
            },
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn random_receipts_print_as_the_tree_prints_them(
        results in proptest::collection::vec(statement_result(), 0..4),
        seq in any::<u64>(),
        replayed in any::<bool>(),
    ) {
        for r in &results {
            both(&Ok(Answer::Executed(r.clone())));
        }
        both(&Ok(Answer::Receipt(Receipt { seq, results, replayed })));
    }
}
