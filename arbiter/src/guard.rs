//! The authorizer: SQL that would break the arrangement is refused before
//! it runs, with the rule it broke.
//!
//! The arbiter owns the transaction, the connection's settings, the
//! `_scribe_*` objects and the `temp` schema; callers own everything else
//! in `main` (ordinary DDL included). SQLite calls the authorizer while it
//! prepares a statement (and again if it re-prepares one after a schema
//! change, and for the body of every trigger a statement fires); the
//! arbiter's own statements run with the guard lowered.
//!
//! Why `temp` is closed: every batch runs on one long-lived connection,
//! and its temp schema lives as long as that connection. A temp trigger or
//! a temp table left by one caller would fire in, or shadow a table of,
//! every later caller's batch and the arbiter's own bookkeeping. So
//! nothing can be created, altered or written in `temp`. The arbiter's own
//! statements also name `main.` explicitly.

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
/// the transaction, like any other write (migrations use them); and
/// `optimize`, which gathers statistics (ANALYZE) where they would help.
const WRITE_PRAGMAS: &[&str] = &["user_version", "application_id", "optimize"];

/// Prefix of the objects that belong to scribe.
pub const RESERVED_PREFIX: &str = "_scribe_";

/// Handle to the installed authorizer.
#[derive(Clone, Debug, Default)]
pub struct Guard {
    lowered: Arc<AtomicBool>,
    /// A write session runs: savepoints are the caller's to nest.
    session: Arc<AtomicBool>,
    /// A statement was just allowed only because a session runs: it must
    /// not stay in the statement cache, where a later batch with the same
    /// text would reuse it unchecked.
    session_only: Arc<AtomicBool>,
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
            if g.session.load(Ordering::Relaxed) && session_only(&ctx.action) {
                g.session_only.store(true, Ordering::Relaxed);
                return Authorization::Allow;
            }
            let in_session = g.session.load(Ordering::Relaxed);
            match rule_broken(&ctx) {
                None => Authorization::Allow,
                // Inside a session the batch's advice would be wrong: it
                // is one already, and its savepoints are allowed.
                Some(_) if in_session && matches!(ctx.action, AuthAction::Transaction { .. }) => {
                    *g.denial.lock().unwrap_or_else(|p| p.into_inner()) = Some(SESSION_RULE.into());
                    Authorization::Deny
                }
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

    /// Lets a write session's savepoints through (`SAVEPOINT`, `RELEASE`,
    /// `ROLLBACK TO`), or closes them again.
    pub fn session(&self, open: bool) {
        self.session.store(open, Ordering::Relaxed);
    }

    /// Whether the statement just prepared was allowed only because a
    /// session runs (taken: the flag is cleared).
    pub fn take_session_only(&self) -> bool {
        self.session_only.swap(false, Ordering::Relaxed)
    }

    /// The rule behind the latest denial, taken (so it is reported once).
    pub fn take_denial(&self) -> Option<String> {
        self.denial.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// What a write session may run that a batch may not: its savepoints,
/// and `PRAGMA defer_foreign_keys`, which is its transaction's own (SQLite
/// turns it off at the transaction's end; in a group it would reach the
/// other batches' writes).
fn session_only(action: &AuthAction<'_>) -> bool {
    match action {
        AuthAction::Savepoint { .. } => true,
        AuthAction::Pragma { pragma_name, .. } => {
            pragma_name.eq_ignore_ascii_case("defer_foreign_keys")
        }
        _ => false,
    }
}

fn reserved(name: &str) -> bool {
    name.len() >= RESERVED_PREFIX.len()
        && name.as_bytes()[..RESERVED_PREFIX.len()].eq_ignore_ascii_case(RESERVED_PREFIX.as_bytes())
}

fn owned_by_scribe(name: &str) -> Option<String> {
    reserved(name).then(|| {
        format!(
            "{name} belongs to scribe: objects named {RESERVED_PREFIX}* cannot be written, \
             created, altered or dropped, nor given triggers or indexes"
        )
    })
}

const SESSION_RULE: &str = "BEGIN, COMMIT and ROLLBACK are not statements of a write \
                            session: it ends with its own commit or rollback call \
                            (SAVEPOINT, RELEASE and ROLLBACK TO run inside it)";

const TEMP_RULE: &str = "the temp schema is closed: every batch shares the arbiter's one \
                         connection, so a temp table, view, index or trigger would outlive the \
                         batch and reach every later caller's; create it in main instead";

/// Why a batch may not say BEGIN, COMMIT or a savepoint.
pub const TRANSACTION_RULE: &str =
    "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE) is not allowed here: the \
     arbiter owns transactions, and a batch is already atomic; to read and then write in one \
     transaction, open a write session (begin, then commit or rollback as calls of their own; \
     savepoints are allowed inside it)";

/// The rule `ctx` breaks, if any.
fn rule_broken(ctx: &AuthContext<'_>) -> Option<String> {
    if ctx
        .database_name
        .is_some_and(|d| d.eq_ignore_ascii_case("temp"))
        && writes(&ctx.action)
        && !schema_table_upkeep(&ctx.action)
    {
        return Some(TEMP_RULE.into());
    }
    match ctx.action {
        AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::DropTempIndex { .. }
        | AuthAction::DropTempTable { .. }
        | AuthAction::DropTempTrigger { .. }
        | AuthAction::DropTempView { .. } => Some(TEMP_RULE.into()),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            Some(TRANSACTION_RULE.into())
        }
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => {
            Some("ATTACH and DETACH are not allowed: the arbiter writes one database file".into())
        }
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => pragma_rule(pragma_name, pragma_value),
        AuthAction::Function { function_name }
            if function_name.eq_ignore_ascii_case("load_extension") =>
        {
            Some(
                "load_extension() is not allowed: trusted extensions are loaded by the \
                 operator (scribed --load-extension PATH)"
                    .into(),
            )
        }
        AuthAction::CreateIndex {
            index_name: a,
            table_name: b,
        }
        | AuthAction::DropIndex {
            index_name: a,
            table_name: b,
        }
        | AuthAction::CreateTrigger {
            trigger_name: a,
            table_name: b,
        }
        | AuthAction::DropTrigger {
            trigger_name: a,
            table_name: b,
        }
        | AuthAction::CreateVtable {
            table_name: a,
            module_name: b,
        }
        | AuthAction::DropVtable {
            table_name: a,
            module_name: b,
        } => owned_by_scribe(a).or_else(|| owned_by_scribe(b)),
        AuthAction::Insert { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::Delete { table_name }
        | AuthAction::DropTable { table_name }
        | AuthAction::AlterTable { table_name, .. }
        | AuthAction::CreateTable { table_name }
        | AuthAction::CreateView {
            view_name: table_name,
        }
        | AuthAction::DropView {
            view_name: table_name,
        }
        | AuthAction::Reindex {
            index_name: table_name,
        } => owned_by_scribe(table_name),
        // ANALYZE of scribe's tables too: it writes only statistics about
        // them (sqlite_stat1), which a plain ANALYZE gathers for every table.
        _ => None,
    }
}

/// Whether an action changes something (in the schema it names).
/// SQLite's own upkeep of the temp schema's table inside `ALTER TABLE`
/// and `DROP` on main tables (it renames or drops what temp triggers say):
/// a caller cannot write that table itself (`writable_schema` is refused),
/// and with the temp schema closed it holds nothing.
fn schema_table_upkeep(action: &AuthAction<'_>) -> bool {
    let schema_table = |t: &str| {
        t.eq_ignore_ascii_case("sqlite_temp_master") || t.eq_ignore_ascii_case("sqlite_master")
    };
    match action {
        // Never an insert: that would be a new object in temp.
        AuthAction::Update { table_name, .. } | AuthAction::Delete { table_name } => {
            schema_table(table_name)
        }
        _ => false,
    }
}

fn writes(action: &AuthAction<'_>) -> bool {
    !matches!(
        action,
        AuthAction::Read { .. }
            | AuthAction::Select
            | AuthAction::Function { .. }
            | AuthAction::Recursive
            | AuthAction::Pragma { .. }
            | AuthAction::Transaction { .. }
            | AuthAction::Savepoint { .. }
    )
}

fn pragma_rule(pragma_name: &str, pragma_value: Option<&str>) -> Option<String> {
    let name = pragma_name.to_ascii_lowercase();
    let name_is = |list: &[&str]| list.contains(&name.as_str());
    let allowed = name_is(INTROSPECTION_PRAGMAS)
        || name_is(WRITE_PRAGMAS)
        || (pragma_value.is_none() && name_is(READABLE_SETTINGS));
    (!allowed).then(|| {
        // foreign_keys has a way of its own per call: name it.
        let own_way = if name == "foreign_keys" {
            "; a migration that needs them off opens with the comment \
             `-- scribe: foreign_keys=off`, and a batch or a session may carry its own \
             `foreign_keys`"
        } else {
            ""
        };
        format!(
            "PRAGMA {name}{} is not allowed in a batch: the writer connection's settings \
             belong to the operator (scribed --pragma NAME=VALUE){own_way}",
            pragma_value.map(|v| format!("={v}")).unwrap_or_default()
        )
    })
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
