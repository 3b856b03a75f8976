//! The one funnel that opens the writer connection.
//!
//! Order matters and is the point: `busy_timeout` first (every later
//! statement may need it), the connection's limits (value size, no
//! attached databases, defensive mode), the operator's settings, then WAL
//! (set once, here, by the only writer), then `synchronous`, then scribe's
//! own tables (created or upgraded in one IMMEDIATE transaction, see
//! [`crate::schema`]). The socket is bound only after this returns.

use rusqlite::{Connection, OpenFlags};

use crate::budget::Budget;
use crate::config::{Config, BUSY_TIMEOUT};
use crate::error::Error;
use crate::fileid::FileId;
use crate::group::Session;
use crate::guard::Guard;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 512;

/// Loads a trusted extension, with loading enabled only for that call.
fn load_extension(conn: &Connection, path: &std::path::Path) -> rusqlite::Result<()> {
    // SQLite tries PATH, then PATH.so, and its error names the last try
    // (`vec0.so.so: cannot open`): a missing file is said plainly.
    let mut with_so = path.as_os_str().to_owned();
    with_so.push(".so");
    if !path.exists() && !std::path::Path::new(&with_so).exists() {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(format!("{} does not exist", path.display())),
        ));
    }
    // SAFETY: the operator named this extension as trusted; loading stays
    // disabled outside this call, so SQL can never load one.
    unsafe {
        let _guard = rusqlite::LoadExtensionGuard::new(conn)?;
        conn.load_extension(path, None::<&str>)
    }
}

/// Bounds what one statement can cost, so the batch budget holds for a
/// single heavy call too (`randomblob(1e9)` is one step of SQLite's
/// machine, invisible to the progress handler): no string or blob longer
/// than `--max-value-bytes`, no attached database, no writes to the
/// schema tables by any pragma. The heap limit (`--max-heap`) is set once
/// for the process, which holds only the writer and the checkpointer.
fn limit(conn: &Connection, config: &Config) -> rusqlite::Result<()> {
    use rusqlite::config::DbConfig;
    use rusqlite::limits::Limit;
    let value = i32::try_from(config.max_value_bytes).unwrap_or(i32::MAX);
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, value)?;
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    // SAFETY: a process-wide setting with no pointer arguments.
    unsafe {
        rusqlite::ffi::sqlite3_hard_heap_limit64(config.max_heap_bytes as i64);
    }
    Ok(())
}

/// `PRAGMA journal_mode=WAL`, waiting as the busy timeout would for a
/// program that holds a lock on a file still in rollback mode: SQLite
/// does not call the busy handler for the exclusive lock this switch
/// takes, so the start failed at once ("database is locked") beside any
/// writer of the file (the race on the first switch to WAL).
fn switch_to_wal(conn: &Connection) -> rusqlite::Result<String> {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)) {
            Err(e) if crate::error::is_busy(&e) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Refuses a database file with more than one name (hard links): its
/// commits would be in the WAL beside whichever name the arbiter used,
/// and an arbiter started under another name after a crash would not see
/// them, and write over the pages they change. A link made while an
/// arbiter serves is refused to callers through it (see
/// `names::served_under_another_name`); this is the start after.
fn one_name(path: &std::path::Path) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) if m.nlink() > 1 => Err(Error::SeveralNames(
            scribe_protocol::names::several_names_message(path, m.nlink()),
        )),
        _ => Ok(()),
    }
}

/// Opens (creating if needed) the database for writing; returns the
/// session (connection, authorizer, time budget) and the last committed
/// sequence number.
///
/// # Errors
///
/// [`Error::Open`] when SQLite refuses (not a database, unreadable…),
/// [`Error::NotWal`] when the file will not switch to WAL,
/// [`Error::SeveralNames`] for a file with hard links.
pub fn open_writer(config: &Config) -> Result<(Session, u64), Error> {
    let path = &config.paths.db;
    let open_err = |source| Error::Open {
        path: path.clone(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    one_name(path)?;
    if !path.exists() {
        // A `-wal` or `-shm` beside no database is left from a deleted
        // one, maybe still open in a process that read it: a new file
        // must not be read through its index or its frames.
        crate::walrestore::remove_orphans(path);
    }
    let mut conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    limit(&conn, config).map_err(open_err)?;
    // SQLite's default, which the bundled build changes (it compiles with
    // foreign keys on): a program's writes are checked as they would be
    // on its own connection, and restoring a `.dump` (children before
    // parents) works. `--pragma foreign_keys=on` turns them on.
    conn.pragma_update(None, "foreign_keys", false)
        .map_err(open_err)?;
    // The operator's settings, before anything else may depend on them.
    for (name, value) in &config.pragmas {
        conn.pragma_update(None, name, value)
            .map_err(|source| Error::Setting {
                what: format!("PRAGMA {name}={value}"),
                source,
            })?;
    }
    for ext in &config.extensions {
        load_extension(&conn, ext).map_err(|source| Error::Setting {
            what: format!("--load-extension {}", ext.display()),
            source,
        })?;
    }
    let mode = switch_to_wal(&conn).map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::NotWal {
            path: path.clone(),
            mode,
        });
    }
    // NORMAL always: a COMMIT does not wait for the disk. With
    // `--synchronous full` the syncer makes each commit durable before
    // its answers go out (see `writer::syncer`).
    conn.execute_batch("PRAGMA synchronous=NORMAL")
        .map_err(open_err)?;
    let wal_pages = std::sync::Arc::new(crate::checkpoint::WalPages::default());
    // Checkpoints run on their own thread (see `checkpoint`), unless the
    // operator chose SQLite's automatic ones.
    if !config
        .pragmas
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("wal_autocheckpoint"))
    {
        crate::checkpoint::install_reset_hook(&mut conn, wal_pages.clone()).map_err(open_err)?;
    }
    crate::schema::ensure(&conn, path)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let own = crate::schema::Own::random();
    let seq: i64 = conn
        .query_row("SELECT seq FROM main._scribe_seq", [], |r| r.get(0))
        .map_err(open_err)?;
    let keys = crate::requests::load(&conn, &own).map_err(open_err)?;
    let file = FileId::of(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    // SQLite opened both when the schema was read and written above.
    let companions = crate::walrestore::Companions::of(path);
    let guard = Guard::install(&mut conn).map_err(open_err)?;
    let budget = Budget::install(&mut conn, config.batch_budget).map_err(open_err)?;
    let foreign_keys = crate::foreign_keys::ForeignKeys::read(&conn).map_err(open_err)?;
    let session = Session {
        conn,
        guard,
        budget,
        own,
        file: (path.clone(), file),
        companions,
        keys,
        max_keys: config.retention.max_keys,
        wal_pages,
        careful: std::cell::Cell::new(0),
        foreign_keys,
        data_version: std::cell::Cell::new(0),
    };
    Ok((session, u64::try_from(seq).unwrap_or(0)))
}
