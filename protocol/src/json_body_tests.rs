//! Decoding JSON write requests: exact types, limits while reading.

use super::*;
use crate::Value;

fn limits() -> Limits {
    Limits {
        max_params: 3,
        max_statements: 2,
        ..Limits::default()
    }
}

#[test]
fn literals_keep_their_exact_type() {
    assert_eq!(value_from_literal("42").unwrap(), Value::Integer(42));
    assert_eq!(
        value_from_literal("-9223372036854775808").unwrap(),
        Value::Integer(i64::MIN)
    );
    assert_eq!(value_from_literal("1.5").unwrap(), Value::Real(1.5));
    assert_eq!(value_from_literal("1e20").unwrap(), Value::Real(1e20));
    assert_eq!(value_from_literal("true").unwrap(), Value::Integer(1));
    assert_eq!(value_from_literal("null").unwrap(), Value::Null);
    assert_eq!(
        value_from_literal(r#""a\"b""#).unwrap(),
        Value::Text("a\"b".into())
    );
    assert_eq!(
        value_from_literal(r#"{"$blob":"AP8="}"#).unwrap(),
        Value::Blob(vec![0, 255])
    );
    for big in [
        "9223372036854775808",
        "99999999999999999999",
        "-9223372036854775809",
    ] {
        let e = value_from_literal(big).unwrap_err();
        assert!(e.contains("outside the 64-bit range"), "{e}");
    }
    assert!(value_from_literal("[1]").is_err());
    assert!(value_from_literal(r#"{"x":1}"#).is_err());
}

#[test]
fn bodies_decode_and_counts_are_refused_while_reading() {
    let b = batch(
        br#"{"statements":[{"sql":"INSERT INTO t VALUES (?, ?)","params":[1,"a"],"expect_rows":1}],"key":"k"}"#,
        &limits(),
    )
    .unwrap();
    assert_eq!(b.key.as_deref(), Some("k"));
    assert_eq!(b.statements[0].expect_rows, Some(1));
    let e = batch(
        br#"{"statements":[{"sql":"x","params":[1,2,3,4,5]}]}"#,
        &limits(),
    )
    .unwrap_err();
    assert!(
        matches!(&e, WriteError::Refused { statement: Some(0), reason } if reason.contains("--max-params")),
        "{e:?}"
    );
    let e = batch(
        br#"{"statements":[{"sql":"a"},{"sql":"b"},{"sql":"c"}]}"#,
        &limits(),
    )
    .unwrap_err();
    assert!(matches!(e, WriteError::Refused { .. }), "{e:?}");
    let e = batch(
        br#"{"statements":[{"sql":"a","params":[[1,2]]}]}"#,
        &limits(),
    )
    .unwrap_err();
    assert!(matches!(e, WriteError::Protocol { .. }), "{e:?}");
    let huge = format!(
        r#"{{"statements":[{{"sql":"a","params":["{}"]}}], "nope": 1}}"#,
        "x".repeat(10_000)
    );
    let e = batch(huge.as_bytes(), &limits()).unwrap_err();
    assert!(e.to_string().len() < 600, "{e}");
}

#[test]
fn a_session_statement_over_a_limit_names_the_statement_once() {
    let body = br#"{"sql": "SELECT ?, ?, ?, ?", "params": [1, 2, 3, 4]}"#;
    match statement(body, &limits()) {
        Err(WriteError::Refused { statement, reason }) => {
            assert_eq!(statement, Some(0));
            assert!(!reason.contains("statement 1"), "{reason}");
            assert!(reason.contains("--max-params"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_field_given_twice_is_refused_not_taken_from_its_last_copy() {
    for body in [
        r#"{"statements":[{"sql":"a"}],"statements":[{"sql":"b"}]}"#,
        r#"{"statements":[{"sql":"a"}],"key":"k","key":"j"}"#,
        r#"{"statements":[{"sql":"a","sql":"b"}]}"#,
        r#"{"statements":[{"sql":"a","params":[1],"params":[2]}]}"#,
    ] {
        let e = batch(body.as_bytes(), &limits()).unwrap_err();
        assert!(
            matches!(&e, WriteError::Protocol { message } if message.contains("duplicate field")),
            "{body}: {e:?}"
        );
    }
}
