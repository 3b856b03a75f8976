//! The JSON codec: requests decode, answers encode; the one-pass request
//! decoder against the two-pass one it replaced, on the same bodies.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use super::*;
use crate::Category;

/// The decoder before the one-pass one: the request object read whole
/// (each key's body skipped over), then its one body decoded.
fn two_pass(body: &[u8], limits: &Limits) -> Result<Request, WriteError> {
    let outer: BTreeMap<&str, &RawValue> = serde_json::from_slice(body)
        .map_err(|e| bad(format!("a request is a JSON object with one key: {e}")))?;
    let mut it = outer.into_iter();
    let (Some((op, raw)), None) = (it.next(), it.next()) else {
        return Err(bad(ONE_KEY.into()));
    };
    operation(op, raw.get().as_bytes(), limits)
}

#[test]
fn requests_decode_and_answers_encode() {
    let l = Limits::default();
    assert_eq!(
        request(br#"{"hello":{"version":2}}"#, &l).unwrap(),
        Request::Hello { version: 2 }
    );
    let w = request(
        br#"{"write":{"statements":[{"sql":"SELECT ?","params":[1]}]}}"#,
        &l,
    )
    .unwrap();
    assert!(matches!(w, Request::Write(b) if b.statements.len() == 1));
    assert!(request(br#"{"write":{},"status":{}}"#, &l).is_err());
    assert!(request(br#"{"nope":{}}"#, &l).is_err());
    let m = request(
        br#"{"exec_many":{"session":3,"statements":[{"sql":"INSERT INTO t VALUES (?)","params":[1]},{"sql":"INSERT INTO t VALUES (?)","params":[2]}]}}"#,
        &l,
    )
    .unwrap();
    assert!(
        matches!(m, Request::ExecMany { session: 3, ref statements } if statements.len() == 2
            && statements[1].params == crate::Params::Positional(vec![crate::Value::Integer(2)]))
    );
    let too_many = Limits {
        max_statements: 1,
        ..Limits::default()
    };
    let refused = request(
        br#"{"exec_many":{"session":3,"statements":[{"sql":"a"},{"sql":"b"}]}}"#,
        &too_many,
    );
    assert!(
        matches!(refused, Err(WriteError::Refused { .. })),
        "{refused:?}"
    );
    let e = reply(&Err(WriteError::ShuttingDown));
    assert_eq!(e["error"]["category"], "shutting_down");
}

#[test]
fn one_pass_decodes_as_two_passes_did() {
    let limits = Limits {
        max_params: 3,
        max_statements: 2,
        ..Limits::default()
    };
    let bodies: &[&str] = &[
        r#"{"hello":{"version":6,"rows":"arrays"}}"#,
        r#"{"status":{}}"#,
        r#"{"write":{"statements":[{"sql":"INSERT INTO t VALUES (?, ?)","params":[1, "a"]}],"key":"k"}}"#,
        r#"{"write":{"key":"k","statements":[{"sql":"x","params":{"a":{"$blob":"AP8="},"b":1.5}}]}}"#,
        r#"{"write":{"statements":[{"sql":"x","expect_rows":1}]}}"#,
        r#" { "write" : { "statements" : [ ] } } "#,
        r#"{"begin":{"idle_ms":100,"total_ms":null}}"#,
        r#"{"exec":{"session":3,"statement":{"sql":"SELECT 1","params":[]}}}"#,
        r#"{"exec_many":{"session":3,"statements":[{"sql":"a","params":[1]},{"sql":"b"}]}}"#,
        r#"{"exec_many":{"statements":[{"sql":"a"}],"session":3}}"#,
        r#"{"commit":{"session":3,"key":"c"}}"#,
        r#"{"rollback":{"session":3}}"#,
        r#"{"stop":{"hold":true}}"#,
        r#"{"migrate":{"migrations":[{"version":1,"name":"a","sql":"CREATE TABLE a(x)"}]}}"#,
        // Limits: a refusal naming its statement.
        r#"{"write":{"statements":[{"sql":"a"},{"sql":"b"},{"sql":"c"}]}}"#,
        r#"{"write":{"statements":[{"sql":"a","params":[1,2,3,4]}]}}"#,
        r#"{"exec":{"session":1,"statement":{"sql":"a","params":[1,2,3,4]}}}"#,
        r#"{"exec_many":{"session":1,"statements":[{"sql":"a"},{"sql":"b"},{"sql":"c"}]}}"#,
        r#"{"exec_many":{"session":1,"statements":[{"sql":"a","params":[1,2,3,4]}]}}"#,
        // Malformed, each its own way.
        r#"{"write":{"statements":[{"sql":"a","params":[99999999999999999999]}]}}"#,
        r#"{"write":{"statements":[{"sql":"a","params":[[1]]}]}}"#,
        r#"{"write":{"statements":[{"params":[]}]}}"#,
        r#"{"write":{"statement":[]}}"#,
        r#"{"write":{}}"#,
        r#"{"write":[]}"#,
        r#"{"write":{},"status":{}}"#,
        r#"{"status":{},"write":{"statements":[]}}"#,
        r#"{"nope":{}}"#,
        r#"{"hello":{}}"#,
        r#"{"exec":{"session":1}}"#,
        r#"{"exec_many":{"session":1}}"#,
        r#"{"exec_many":{"statements":[]}}"#,
        r#"{"exec_many":{"session":1,"statements":[],"x":1}}"#,
        r#"{"exec_many":{"session":-1,"statements":[]}}"#,
        r#"{"exec_many":{"session":1,"session":2,"statements":[]}}"#,
        r#"{"exec_many":{"session":1,"statements":[],"statements":[]}}"#,
        r#"{}"#,
        r#"[]"#,
        r#"[{"status":{}}]"#,
        r#""status""#,
        r#"{"status":{}} x"#,
        r#"{"status":{}"#,
        r#"{"write":{"statements":[{"sql":"a"}]}"#,
        "",
        "\u{0}",
    ];
    for body in bodies {
        let (new, old) = (
            request(body.as_bytes(), &limits),
            two_pass(body.as_bytes(), &limits),
        );
        match (&new, &old) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{body}"),
            (Err(a), Err(b)) => {
                assert_eq!(a.category(), b.category(), "{body}: {a} / {b}");
                if a.category() == Category::Refused {
                    assert_eq!(a, b, "{body}");
                }
            }
            _ => panic!("{body}: one pass {new:?}, two passes {old:?}"),
        }
    }
    // A key given twice: the object kept the last, one pass refuses it.
    let twice = br#"{"status":{},"status":{}}"#;
    assert!(two_pass(twice, &limits).is_ok());
    assert!(matches!(
        request(twice, &limits),
        Err(WriteError::Protocol { .. })
    ));
}

#[test]
fn a_misspelt_field_of_a_session_request_is_refused_and_named() {
    let limits = Limits::default();
    // A begin with `wait` for `wait_ms` would wait without a limit.
    for (op, body, field) in [
        ("begin", r#"{"wait":100}"#, "`wait`"),
        ("rollback", r#"{"session":1,"sesion":2}"#, "`sesion`"),
        ("stop", r#"{"hld":true}"#, "`hld`"),
        (
            "exec",
            r#"{"session":"1","statement":{"sql":"x"}}"#,
            "invalid type",
        ),
    ] {
        match operation(op, body.as_bytes(), &limits) {
            Err(WriteError::Protocol { message }) => {
                assert!(message.contains(field), "{op}: {message}");
            }
            other => panic!("{op}: {other:?}"),
        }
    }
    assert!(operation("begin", br#"{"wait_ms":100}"#, &limits).is_ok());
    // exec_many, decoded in one pass where it stands, likewise.
    let twice = request(
        br#"{"exec_many":{"session":1,"session":2,"statements":[]}}"#,
        &limits,
    );
    assert!(
        matches!(&twice, Err(WriteError::Protocol { message }) if message.contains("duplicate field session")),
        "{twice:?}"
    );
}
