//! What a migrate call answers: the seq to wait for when it had nothing
//! to apply, and a refusal worded for migrations.

use crate::harness::{stderr, Env};
use crate::migrations::{dir, THREE};

/// A call with nothing left to apply answers the seq the schema is there
/// as of, to wait for before reading it: it answered 0 (helper 93).
#[test]
fn a_call_with_nothing_to_apply_answers_the_seq_to_wait_for() {
    let env = Env::new();
    let d = dir(&env, "m", &THREE);
    let json = |out: std::process::Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let first = json(env.scribe(&["--json", "migrate", d.to_str().unwrap()]));
    let again = json(env.scribe(&["--json", "migrate", d.to_str().unwrap()]));
    assert_eq!(
        first["applied"].as_array().map(Vec::len),
        Some(3),
        "{first}"
    );
    assert_eq!(
        again["applied"].as_array().map(Vec::len),
        Some(0),
        "{again}"
    );
    assert!(first["seq"].as_u64().unwrap() > 0, "{first}");
    assert_eq!(again["seq"], first["seq"], "{again}");
}

/// A savepoint in a migration is refused as migrations refuse BEGIN,
/// saying why, not with the batches' advice to open a write session
/// (helper 93); the migration is rolled back, the one before it stays.
#[test]
fn a_savepoint_in_a_migration_is_refused_in_a_migrations_words() {
    let env = Env::new();
    let d = dir(
        &env,
        "m",
        &[
            THREE[0],
            (
                "0002_sp.sql",
                "SAVEPOINT a; INSERT INTO notes(body) VALUES ('x'); RELEASE a;",
            ),
        ],
    );
    let out = env.scribe(&["migrate", d.to_str().unwrap()]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(16), "{said}");
    assert!(said.contains("not allowed in a migration"), "{said}");
    assert!(!said.contains("write session"), "{said}");
    assert_eq!(env.count("SELECT count(*) FROM _scribe_migrations"), 1);
    assert_eq!(env.count("SELECT count(*) FROM notes"), 0);
}
