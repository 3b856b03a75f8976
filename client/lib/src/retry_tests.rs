//! Unit tests of `retry`: which errors are retried, and what an unknown
//! outcome ends as.

use super::*;

#[test]
fn a_transient_failure_after_an_unknown_outcome_stays_unknown() {
    let key = Some("k-1");
    let unavailable = WriteError::Unavailable {
        reason: "no arbiter is running".into(),
    };
    let overloaded = WriteError::Overloaded {
        reason: "its write queue is full".into(),
        retry_after_ms: 5,
    };
    for e in [unavailable, overloaded, WriteError::ShuttingDown] {
        match still_unknown(e.clone(), key) {
            WriteError::Timeout { message } => {
                assert!(
                    message.contains("may or may not have committed"),
                    "{message}"
                );
                assert!(message.contains(&e.to_string()), "{message}");
                assert!(message.contains("\"k-1\""), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    let timeout = WriteError::Timeout {
        message: "no answer".into(),
    };
    assert_eq!(
        still_unknown(timeout, key),
        WriteError::Timeout {
            message: "no answer; its idempotency key is \"k-1\"".into()
        }
    );
    // A definite answer: no earlier try committed (the key was not found).
    let sql = WriteError::Sql {
        statement: Some(0),
        code: 19,
        message: "UNIQUE constraint failed: t.k".into(),
    };
    assert_eq!(still_unknown(sql.clone(), key), sql);
}

#[test]
fn a_refusal_after_an_unknown_outcome_stays_unknown() {
    let busy = WriteError::Busy {
        waited_ms: 200,
        behind: "another connection's write transaction".into(),
    };
    // Alone, a refusal is final: nothing was written.
    let paths = Paths::for_db(std::path::Path::new("/nonexistent/x.db"), None).unwrap();
    assert!(matches!(verdict(&busy, &paths), Verdict::GiveUp));
    // After a try whose outcome is unknown, it is not "not written".
    match after_unknown(busy) {
        WriteError::Timeout { message } => {
            assert!(
                message.contains("may or may not have committed"),
                "{message}"
            );
            assert!(message.contains("database is busy"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let sql = WriteError::Sql {
        statement: Some(0),
        code: 1,
        message: "no such table: t".into(),
    };
    assert_eq!(after_unknown(sql.clone()), sql);
}

#[test]
fn only_retryable_categories_are_retried() {
    let paths = Paths::for_db(std::path::Path::new("/nonexistent/x.db"), None).unwrap();
    let give_up = [
        WriteError::Sql {
            statement: Some(0),
            code: 1,
            message: String::new(),
        },
        WriteError::Conflict {
            statement: None,
            message: String::new(),
        },
        WriteError::Refused {
            statement: None,
            reason: String::new(),
        },
        WriteError::Protocol {
            message: String::new(),
        },
    ];
    for e in give_up {
        assert_eq!(verdict(&e, &paths), Verdict::GiveUp, "{e:?}");
    }
    assert!(matches!(
        verdict(&WriteError::ShuttingDown, &paths),
        Verdict::Retry {
            reconnect: true,
            ..
        }
    ));
    assert_eq!(
        verdict(
            &WriteError::Overloaded {
                reason: "full".into(),
                retry_after_ms: 70
            },
            &paths
        ),
        Verdict::Retry {
            reconnect: false,
            at_least: Duration::from_millis(70)
        }
    );
}

#[test]
fn backoff_grows_to_the_cap_with_jitter() {
    let mut b = Backoff::default();
    let first = b.pause(Duration::ZERO);
    assert!(first <= FIRST && first >= FIRST / 2);
    for _ in 0..20 {
        assert!(b.pause(Duration::ZERO) <= CAP);
    }
    assert!(b.pause(Duration::from_secs(3)) >= Duration::from_secs(3));
}

#[test]
fn hex_digits_are_those_of_the_formatter() {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for v in [0, 1, 15, 16, 255, u64::from(u32::MAX), u64::MAX] {
        for width in [1, 16] {
            let mut s = String::new();
            push_hex(&mut s, v, width);
            assert_eq!(s, format!("{v:0width$x}"));
        }
    }
    for _ in 0..1000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = x >> (x % 64);
        let mut s = String::new();
        push_hex(&mut s, v, 16);
        push_hex(&mut s, v, 1);
        assert_eq!(s, format!("{v:016x}{v:x}"));
    }
}

#[test]
fn keys_are_unique_ordered_and_short_enough() {
    let a = new_key();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let b = new_key();
    assert_ne!(a, b);
    assert!(a < b, "{a} then {b}");
    assert!(a.len() <= scribe_protocol::limits::MAX_KEY_LEN);
}
