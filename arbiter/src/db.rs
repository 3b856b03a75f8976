//! The one funnel that opens the writer connection.
//!
//! Order matters and is the point: `busy_timeout` first (every later
//! statement may need it), then WAL (set once, here, by the only writer),
//! then `synchronous`, then scribe's own tables in one IMMEDIATE
//! transaction. The socket is bound only after this returns.

use rusqlite::{Connection, OpenFlags};

use crate::budget::Budget;
use crate::config::{Config, BUSY_TIMEOUT};
use crate::error::Error;
use crate::group::Session;
use crate::guard::Guard;
use crate::requests;

/// The table holding scribe's counters; `seq` is the commit sequence.
pub const META_TABLE: &str = "_scribe_meta";

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 512;

/// Loads a trusted extension, with loading enabled only for that call.
fn load_extension(conn: &Connection, path: &std::path::Path) -> rusqlite::Result<()> {
    // SAFETY: the operator named this extension as trusted; loading stays
    // disabled outside this call, so SQL can never load one.
    unsafe {
        let _guard = rusqlite::LoadExtensionGuard::new(conn)?;
        conn.load_extension(path, None::<&str>)
    }
}

/// Opens (creating if needed) the database for writing; returns the
/// session (connection, authorizer, time budget) and the last committed
/// sequence number.
///
/// # Errors
///
/// [`Error::Open`] when SQLite refuses (not a database, unreadable…),
/// [`Error::NotWal`] when the file will not switch to WAL.
pub fn open_writer(config: &Config) -> Result<(Session, u64), Error> {
    let path = &config.paths.db;
    let open_err = |source| Error::Open {
        path: path.clone(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
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
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::NotWal {
            path: path.clone(),
            mode,
        });
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous={}",
        config.synchronous.as_str()
    ))
    .map_err(open_err)?;
    // Checkpoints run on their own thread (see `checkpoint`), unless the
    // operator chose SQLite's automatic ones.
    if !config
        .pragmas
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("wal_autocheckpoint"))
    {
        crate::checkpoint::install_reset_hook(&mut conn).map_err(open_err)?;
    }
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         CREATE TABLE IF NOT EXISTS {META_TABLE}(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
         INSERT OR IGNORE INTO {META_TABLE}(key, value) VALUES('seq', 0);
         {}
         COMMIT;",
        requests::SCHEMA
    ))
    .map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let seq: i64 = conn
        .query_row(
            &format!("SELECT value FROM {META_TABLE} WHERE key='seq'"),
            [],
            |r| r.get(0),
        )
        .map_err(open_err)?;
    let guard = Guard::install(&mut conn).map_err(open_err)?;
    let budget = Budget::install(&mut conn, config.batch_budget).map_err(open_err)?;
    let session = Session {
        conn,
        guard,
        budget,
    };
    Ok((session, u64::try_from(seq).unwrap_or(0)))
}
