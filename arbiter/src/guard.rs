//! The authorizer: SQL that would break the arrangement is refused before
//! it runs, with the rule it broke.
//!
//! The arbiter owns the transaction, the connection's settings and the
//! `_scribe_*` tables; callers own everything else (ordinary DDL included).
//! SQLite calls the authorizer while it prepares a statement (and again if
//! it re-prepares one after a schema change); the arbiter's own statements
//! run with the guard lowered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;

/// Pragmas that only describe the schema or check the file; their
/// argument names a table or index, or bounds the check.
const INTROSPECTION_PRAGMAS: &[&str] = &[
    "collation_list",
    "compile_options",
    "database_list",
    "foreign_key_check",
    "foreign_key_list",
    "function_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "module_list",
    "pragma_list",
    "quick_check",
    "table_info",
    "table_list",
    "table_xinfo",
];

/// Settings a batch may read (without a value).
const READABLE_SETTINGS: &[&str] = &[
    "application_id",
    "data_version",
    "encoding",
    "foreign_keys",
    "freelist_count",
    "journal_mode",
    "page_count",
    "page_size",
    "schema_version",
    "user_version",
];

/// Pragmas a batch may set: they are stored in the database file, inside
/// the transaction, like any other write (migrations use them).
const WRITE_PRAGMAS: &[&str] = &["user_version", "application_id"];

/// Prefix of the tables that belong to scribe.
pub const RESERVED_PREFIX: &str = "_scribe_";

/// The arbiter's own statements. They are prepared with the guard lowered
/// and cached by their text, so a batch statement with the very same text
/// would reuse the trusted preparation: such text is refused.
pub mod own {
    /// Opens a group's transaction.
    pub const BEGIN: &str = "BEGIN IMMEDIATE";
    /// Opens one batch's savepoint.
    pub const SAVEPOINT: &str = "SAVEPOINT scribe_batch";
    /// Keeps one batch's work.
    pub const RELEASE: &str = "RELEASE scribe_batch";
    /// Undoes one batch's work.
    pub const ROLLBACK_TO: &str = "ROLLBACK TO scribe_batch";
    /// Commits a group.
    pub const COMMIT: &str = "COMMIT";
    /// Abandons a group.
    pub const ROLLBACK: &str = "ROLLBACK";
    /// Stores the commit sequence in the group's transaction.
    pub const BUMP_SEQ: &str = "UPDATE _scribe_meta SET value = ?1 WHERE key = 'seq'";
    /// Looks up an idempotency key.
    pub const FIND_REQUEST: &str = "SELECT hash, receipt FROM _scribe_requests WHERE key = ?1";
    /// Records an idempotency key with its receipt.
    pub const RECORD_REQUEST: &str = "INSERT INTO _scribe_requests(key, hash, seq, created_at, \
                                      receipt) VALUES (?1, ?2, ?3, ?4, ?5)";

    /// All of them.
    pub const ALL: &[&str] = &[
        BEGIN,
        SAVEPOINT,
        RELEASE,
        ROLLBACK_TO,
        COMMIT,
        ROLLBACK,
        BUMP_SEQ,
        FIND_REQUEST,
        RECORD_REQUEST,
    ];
}

/// Rules checked on the text before SQLite sees it: the arbiter's own
/// statement texts (see [`own`]) and `VACUUM` (which cannot run inside the
/// arbiter's transaction and must not copy the database elsewhere).
pub fn refused_text(sql: &str) -> Option<String> {
    if own::ALL.contains(&sql) {
        return Some(
            "this exact text is one of the arbiter's own statements; transaction control and \
             scribe's tables are not for batches"
                .into(),
        );
    }
    let head = sql.trim_start();
    if head.len() >= 6 && head[..6].eq_ignore_ascii_case("vacuum") {
        return Some(
            "VACUUM and VACUUM INTO are not allowed in a batch: the arbiter owns the \
             database file"
                .into(),
        );
    }
    None
}

/// Handle to the installed authorizer.
#[derive(Clone, Debug, Default)]
pub struct Guard {
    lowered: Arc<AtomicBool>,
    denial: Arc<Mutex<Option<String>>>,
}

impl Guard {
    /// Installs the authorizer on `conn`.
    ///
    /// # Errors
    ///
    /// SQLite's error.
    pub fn install(conn: &mut Connection) -> rusqlite::Result<Guard> {
        let guard = Guard::default();
        let g = guard.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            if g.lowered.load(Ordering::Relaxed) {
                return Authorization::Allow;
            }
            match rule_broken(&ctx) {
                None => Authorization::Allow,
                Some(rule) => {
                    *g.denial.lock().unwrap_or_else(|p| p.into_inner()) = Some(rule);
                    Authorization::Deny
                }
            }
        }))?;
        Ok(guard)
    }

    /// Runs the arbiter's own statements with the guard lowered.
    pub fn trusted<T>(&self, f: impl FnOnce() -> T) -> T {
        self.lowered.store(true, Ordering::Relaxed);
        let out = f();
        self.lowered.store(false, Ordering::Relaxed);
        out
    }

    /// The rule behind the latest denial, taken (so it is reported once).
    pub fn take_denial(&self) -> Option<String> {
        self.denial.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// The rule `ctx` breaks, if any.
fn rule_broken(ctx: &AuthContext<'_>) -> Option<String> {
    let reserved = |t: &str| t.to_ascii_lowercase().starts_with(RESERVED_PREFIX);
    match ctx.action {
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Some(
            "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE) is not allowed \
             in a batch: the arbiter owns transactions, and a batch is already atomic"
                .into(),
        ),
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => {
            Some("ATTACH and DETACH are not allowed: the arbiter writes one database file".into())
        }
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            let name_is = |list: &[&str]| list.contains(&name.as_str());
            let allowed = name_is(INTROSPECTION_PRAGMAS)
                || name_is(WRITE_PRAGMAS)
                || (pragma_value.is_none() && name_is(READABLE_SETTINGS));
            (!allowed).then(|| {
                format!(
                    "PRAGMA {name}{} is not allowed in a batch: the writer connection's \
                     settings belong to the operator (scribed --pragma NAME=VALUE)",
                    pragma_value.map(|v| format!("={v}")).unwrap_or_default()
                )
            })
        }
        AuthAction::Function { function_name }
            if function_name.eq_ignore_ascii_case("load_extension") =>
        {
            Some(
                "load_extension() is not allowed: trusted extensions are loaded by the \
                 operator (scribed --load-extension PATH)"
                    .into(),
            )
        }
        AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name }
        | AuthAction::DropTable { table_name }
        | AuthAction::AlterTable { table_name, .. }
        | AuthAction::CreateIndex { table_name, .. }
        | AuthAction::DropIndex { table_name, .. }
        | AuthAction::CreateTrigger { table_name, .. }
        | AuthAction::DropTrigger { table_name, .. }
        | AuthAction::CreateTable { table_name }
        | AuthAction::CreateVtable { table_name, .. }
            if reserved(table_name) =>
        {
            Some(format!(
                "table {table_name} belongs to scribe: tables named {RESERVED_PREFIX}* cannot \
                 be written, created, altered or dropped by a batch"
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded() -> (Connection, Guard) {
        let mut c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE _scribe_meta(k, v); CREATE TABLE t(x)")
            .unwrap();
        let g = Guard::install(&mut c).unwrap();
        (c, g)
    }

    fn refused(c: &Connection, g: &Guard, sql: &str) -> String {
        match c.prepare(sql) {
            Ok(_) => panic!("{sql} was allowed"),
            Err(_) => g.take_denial().unwrap_or_else(|| panic!("{sql}: no rule")),
        }
    }

    #[test]
    fn refuses_what_breaks_the_arrangement() {
        let (c, g) = guarded();
        for sql in ["BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT a", "RELEASE a"] {
            assert!(
                refused(&c, &g, sql).contains("transaction control"),
                "{sql}"
            );
        }
        assert!(refused(&c, &g, "ATTACH 'x.db' AS x").contains("ATTACH"));
        assert!(refused(&c, &g, "DETACH x").contains("ATTACH"));
        for sql in [
            "PRAGMA journal_mode=DELETE",
            "PRAGMA locking_mode=EXCLUSIVE",
            "PRAGMA synchronous=OFF",
            "PRAGMA wal_checkpoint",
            "PRAGMA query_only=1",
            "PRAGMA foreign_keys=OFF",
        ] {
            assert!(refused(&c, &g, sql).contains("scribed --pragma"), "{sql}");
        }
        assert!(refused(&c, &g, "SELECT load_extension('x')").contains("load_extension"));
        for sql in [
            "INSERT INTO _scribe_meta VALUES (1, 2)",
            "UPDATE _scribe_meta SET v = 1",
            "DELETE FROM _scribe_meta",
            "DROP TABLE _scribe_meta",
            "CREATE TABLE _scribe_x(a)",
            "CREATE TRIGGER tr AFTER INSERT ON _scribe_meta BEGIN SELECT 1; END",
            "CREATE INDEX i ON _scribe_meta(k)",
        ] {
            assert!(refused(&c, &g, sql).contains("belongs to scribe"), "{sql}");
        }
    }

    #[test]
    fn a_trigger_cannot_reach_the_reserved_tables() {
        let (c, g) = guarded();
        // SQLite checks a trigger's body when a statement that fires it is
        // prepared: the statement is refused.
        c.execute_batch(
            "CREATE TRIGGER sneaky AFTER INSERT ON t BEGIN UPDATE _scribe_meta SET v = 0; END",
        )
        .unwrap();
        assert!(c.prepare("INSERT INTO t VALUES (1)").is_err());
        assert!(g.take_denial().unwrap().contains("belongs to scribe"));
    }

    #[test]
    fn allows_ordinary_work() {
        let (c, g) = guarded();
        c.execute_batch(
            "CREATE TABLE u(a INTEGER PRIMARY KEY, b TEXT);
             CREATE INDEX ub ON u(b);
             CREATE VIEW v AS SELECT * FROM u;
             CREATE TRIGGER tu AFTER INSERT ON u BEGIN INSERT INTO t VALUES (new.a); END;
             INSERT INTO u(b) VALUES ('x');
             ALTER TABLE u ADD COLUMN c;
             PRAGMA user_version = 3;
             DROP VIEW v;
             SELECT * FROM _scribe_meta;",
        )
        .unwrap_or_else(|e| panic!("{e}: {:?}", g.take_denial()));
        c.prepare("PRAGMA table_info(u)").unwrap();
        c.prepare("PRAGMA user_version").unwrap();
        c.prepare("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r").unwrap();
        assert_eq!(g.take_denial(), None);
    }

    #[test]
    fn own_statements_and_vacuum_are_refused_by_text() {
        assert!(refused_text("SAVEPOINT scribe_batch").is_some());
        assert!(refused_text(own::RECORD_REQUEST).is_some());
        assert!(refused_text("  vacuum into '/tmp/copy.db'").is_some());
        assert!(refused_text("VACUUM").is_some());
        assert!(refused_text("SELECT 'vacuum'").is_none());
    }

    #[test]
    fn trusted_code_passes() {
        let (c, g) = guarded();
        g.trusted(|| c.execute_batch("BEGIN; UPDATE _scribe_meta SET v = 1; COMMIT"))
            .unwrap();
        assert!(c.prepare("BEGIN").is_err(), "the guard is back up");
    }
}
