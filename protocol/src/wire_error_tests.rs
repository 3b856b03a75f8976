//! Tests of `wire_error.rs`.

use super::*;

fn sql(statement: Option<u32>) -> WriteError {
    WriteError::Sql {
        statement,
        code: 19,
        message: "UNIQUE constraint failed: t.k".into(),
    }
}

#[test]
fn a_whole_call_says_nothing_was_written() {
    for e in [
        sql(Some(1)),
        sql(None),
        WriteError::Refused {
            statement: None,
            reason: "r".into(),
        },
    ] {
        assert!(e.message(Undone::Call).ends_with(NOTHING), "{e}");
        assert_eq!(e.message(Undone::Call), e.to_string());
    }
}

#[test]
fn a_statement_that_kept_rows_says_so() {
    let e = sql(Some(0)).with_rows_kept(2);
    let m = e.message(Undone::Statement);
    assert!(!m.contains("wrote nothing"), "{m}");
    assert!(!m.contains("nothing was written"), "{m}");
    assert!(
        m.contains("it changed 2 rows before it failed, which stand"),
        "{m}"
    );
    let one = sql(Some(0)).with_rows_kept(1).message(Undone::Statement);
    assert!(
        one.contains("it changed 1 row before it failed, which stands"),
        "{one}"
    );
    assert!(m.ends_with("and the transaction goes on"), "{m}");
    let WriteError::Sql { message, .. } = &e else {
        unreachable!()
    };
    assert_eq!(
        WriteError::sqlite_words(message),
        "UNIQUE constraint failed: t.k"
    );
    assert_eq!(
        WriteError::sqlite_words("m; it changed x"),
        "m; it changed x"
    );
}

#[test]
fn a_session_statement_says_what_stands() {
    let conflict = WriteError::Conflict {
        statement: Some(0),
        message: "m".into(),
    };
    let refused = WriteError::Refused {
        statement: Some(2),
        reason: "BEGIN".into(),
    };
    for e in [sql(Some(1)), conflict, refused] {
        let m = e.message(Undone::Statement);
        assert!(!m.contains("nothing was written"), "{m}");
        assert!(m.ends_with("and the transaction goes on"), "{m}");
        // The head (which statement, SQLite's words) is kept.
        assert!(m.starts_with(e.to_string().strip_suffix(NOTHING).unwrap()));
    }
    // A call refused whole (no statement named) says so.
    let whole = WriteError::Refused {
        statement: None,
        reason: "over a limit".into(),
    };
    assert!(whole
        .message(Undone::Statement)
        .contains("; this call wrote nothing, what ran before it"));
    // A failed commit (no statement) and a rolled-back session ended it.
    assert_eq!(sql(None).message(Undone::Statement), sql(None).to_string());
    let rolled = WriteError::RolledBack {
        statement: Some(0),
        code: 516,
        message: "m".into(),
    };
    assert_eq!(rolled.message(Undone::Statement), rolled.to_string());
}
