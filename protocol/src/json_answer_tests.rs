//! The answers written straight to bytes against the tree they replace:
//! the same bytes, for chosen edge cases and for random receipts.

use proptest::prelude::*;

use super::*;
use crate::json_frame::reply_as;
use crate::WriteError;

fn both(reply: &Reply) {
    for rows_as_arrays in [false, true] {
        let options = HelloOptions { rows_as_arrays };
        let tree = reply_as(reply, options).to_string();
        let mut direct = Vec::new();
        write_reply(reply, options, &mut direct);
        assert_eq!(
            String::from_utf8(direct).unwrap(),
            tree,
            "arrays: {rows_as_arrays}"
        );
    }
}

fn result(columns: &[&str], rows: Vec<Vec<Value>>) -> StatementResult {
    StatementResult {
        rows_affected: 3,
        last_insert_rowid: -9,
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        rows,
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
    // A repeated name keeps its last value; names that sort apart from
    // their order, and that need escaping.
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
