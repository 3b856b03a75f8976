//! A database written by scribe 0.1.0 (a fixture committed with the
//! tests) opens under this release: its rows, its seq and its keys carry
//! on, and scribe's own tables are upgraded once.

use crate::harness::Env;

/// Made by scribe 0.1.0: `notes(id, body)` with three rows, two of them
/// written with keys `fixture-1` (with `RETURNING id`) and `fixture-2`;
/// seq 4.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/made-by-0.1.0.db");

#[test]
fn a_database_from_0_1_0_opens_and_keeps_its_rows_seq_and_keys() {
    let mut env = Env::new();
    std::fs::copy(FIXTURE, &env.db).unwrap();
    env.start_arbiter(&[]);
    let rows = env.scribe_ok(&["--json", "query", "SELECT body FROM notes ORDER BY id"]);
    assert_eq!(
        rows.trim(),
        r#"[{"body":"first"},{"body":"second"},{"body":"third"}]"#
    );
    // The key recorded by 0.1.0 replays its stored receipt, RETURNING row
    // and all.
    let replay = env.scribe_ok(&[
        "--json",
        "exec",
        "--key",
        "fixture-1",
        "INSERT INTO notes(body) VALUES (?) RETURNING id",
        "-p",
        "first",
    ]);
    let r: serde_json::Value = serde_json::from_str(&replay).unwrap();
    assert_eq!(r["replayed"], true, "{r}");
    assert_eq!(r["seq"], 2);
    assert_eq!(r["results"][0]["rows"][0]["id"], 1);
    // The seq carries on from 4.
    let next = env.scribe_ok(&[
        "--json",
        "exec",
        "INSERT INTO notes(body) VALUES ('fourth')",
    ]);
    let r: serde_json::Value = serde_json::from_str(&next).unwrap();
    assert_eq!(r["seq"], 5);
    assert_eq!(env.count("SELECT count(*) FROM notes"), 4);
    // Upgraded through every step to this release's version.
    assert_eq!(
        env.count("SELECT value FROM _scribe_meta WHERE key = 'schema'"),
        scribe_arbiter::schema::VERSION
    );
    assert_eq!(env.count("SELECT count(*) FROM _scribe_migrations"), 0);
    // The fixture's two keys and the one `scribe exec` gave 'fourth'.
    assert_eq!(env.count("SELECT sum(n) FROM _scribe_requests"), 3);
    assert_eq!(
        env.count("PRAGMA user_version"),
        0,
        "the program's user_version is left alone"
    );
}
