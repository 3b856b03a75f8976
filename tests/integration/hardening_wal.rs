//! Hardening, the WAL's side: a WAL deleted, renamed or replaced under a
//! running arbiter stops it, and every acknowledged write survives, even
//! past a reader's old snapshot.

use std::time::{Duration, Instant};

use crate::harness::{Env, SCHEMA};

/// A read-only connection holding a snapshot in which `t` is empty (its
/// close cannot checkpoint, and the snapshot keeps later frames back).
pub(crate) fn snapshot_of_empty_t(env: &Env) -> rusqlite::Connection {
    snapshot_of_t(env, 0)
}

/// As [`snapshot_of_empty_t`], of a `t` that holds `rows` rows.
pub(crate) fn snapshot_of_t(env: &Env, rows: i64) -> rusqlite::Connection {
    let reader = rusqlite::Connection::open_with_flags(
        env.paths().db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let seen: i64 = reader
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, rows);
    reader
}

/// A WAL deleted under a running arbiter: commits went on into the
/// deleted file, readers failed with `disk I/O error`, and a kill -9 then
/// lost every commit since the last checkpoint (the table itself, here).
/// The arbiter stops within a second, its close moving the WAL's commits
/// into the database file, and the next caller starts a new one.
#[test]
fn a_wal_deleted_under_the_arbiter_stops_it_and_loses_nothing() {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    env.insert_tagged("before", 3);
    let first = env.arbiter_pid().expect("auto-started");
    std::fs::remove_file(env.paths().wal()).unwrap();
    // Acknowledged in the moment before the arbiter notices, or refused.
    let mut acked = 3;
    for i in 0..3 {
        let sql = format!("INSERT INTO t(tag, i) VALUES ('after', {i})");
        if env
            .scribe(&["--no-autostart", "exec", &sql])
            .status
            .success()
        {
            acked += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.arbiter_processes().contains(&first) {
        assert!(
            Instant::now() < deadline,
            "the arbiter kept writing into a deleted WAL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::read_to_string(env.paths().log).unwrap();
    assert!(log.contains("WAL file was deleted or replaced"), "{log}");
    // No stopping marker: the next caller starts a new arbiter at once.
    env.scribe_ok(&["exec", "INSERT INTO t(tag, i) VALUES ('next', 1)"]);
    assert_eq!(
        env.count("SELECT count(*) FROM t"),
        acked + 1,
        "every acknowledged row"
    );
}

/// The same with a reader holding an old snapshot (read-only, so its own
/// close cannot checkpoint): the stop's checkpoint could copy nothing
/// past that snapshot, the rest stayed in the file the arbiter held, and
/// every write acknowledged since the snapshot vanished with it ("database
/// disk image is malformed" on the next open). It copies the held WAL
/// back to its path before it stops, whether the path's file was deleted,
/// renamed, or replaced by another (set aside, not destroyed).
fn wal_taken_while_a_reader_holds_an_old_snapshot(take: impl FnOnce(&std::path::Path)) -> Env {
    let env = Env::new();
    env.scribe_ok(&["exec", SCHEMA]);
    let reader = snapshot_of_empty_t(&env);
    env.insert_tagged("after snapshot", 3);
    let first = env.arbiter_pid().expect("auto-started");
    take(&env.paths().wal());
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.arbiter_processes().contains(&first) {
        assert!(Instant::now() < deadline, "the arbiter did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The reader outlived the arbiter; it still sees its snapshot.
    let seen: i64 = reader
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, 0);
    drop(reader);
    assert_eq!(
        env.count("SELECT count(*) FROM t"),
        3,
        "every acknowledged row"
    );
    env
}

fn log_of(env: &Env) -> String {
    std::fs::read_to_string(env.paths().log).unwrap()
}

#[test]
fn a_wal_deleted_while_a_reader_holds_an_old_snapshot_loses_nothing() {
    let env = wal_taken_while_a_reader_holds_an_old_snapshot(|wal| {
        std::fs::remove_file(wal).unwrap();
    });
    assert!(log_of(&env).contains("copied back"), "{}", log_of(&env));
}

/// Renamed (or hard-linked elsewhere, then deleted, as a backup tool
/// does): the held file still has a name, so it is found by identity.
#[test]
fn a_wal_renamed_while_a_reader_holds_an_old_snapshot_loses_nothing() {
    let env = wal_taken_while_a_reader_holds_an_old_snapshot(|wal| {
        std::fs::rename(wal, wal.with_extension("moved")).unwrap();
    });
    assert!(log_of(&env).contains("copied back"), "{}", log_of(&env));
}

#[test]
fn a_wal_replaced_while_a_reader_holds_an_old_snapshot_loses_nothing() {
    let mut other = Vec::new();
    let env = wal_taken_while_a_reader_holds_an_old_snapshot(|wal| {
        other = std::fs::read(wal).unwrap();
        other.truncate(32);
        other.extend([0xa5; 4096]);
        let tmp = wal.with_extension("new");
        std::fs::write(&tmp, &other).unwrap();
        std::fs::rename(&tmp, wal).unwrap();
    });
    let log = log_of(&env);
    assert!(log.contains("the other set aside"), "{log}");
    let aside: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("-wal.replaced-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), other, "kept as it was");
}
