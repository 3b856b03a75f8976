//! Schema migrations: what a program sends (or the operator points
//! `scribed --migrations` at), and what the arbiter reports back.
//!
//! A migration is (version, name, SQL script). The arbiter applies the
//! ones the database lacks in version order, each in its own transaction
//! with its record (version, name, checksum, time) in `_scribe_migrations`.
//! Any number of processes may ask at once: the writer serves the requests
//! one after the other, so each step runs once and the others are told the
//! database is already there.

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::directive::directives;
use crate::wire_error::WriteError;

/// The longest one migration may hold the writer: a backfill may take a
/// while, a runaway statement may not take it for ever. Callers wait that
/// long for an answer, beyond their usual call timeout.
pub const BUDGET: std::time::Duration = std::time::Duration::from_secs(300);

/// The line of a migration file (among the comments it opens with) that
/// asks for `foreign_keys` off while it runs (SQLite's twelve-step table
/// rebuild needs it).
pub const FOREIGN_KEYS_OFF: &str = "-- scribe: foreign_keys=off";

/// One migration. Unknown fields are refused (JSON): a misspelt
/// `foreign_keys_off` would otherwise run the step with foreign keys on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    /// Its version: 1, 2, 3… with no gap.
    pub version: u64,
    /// A name for people (`add_done_column`).
    pub name: String,
    /// The SQL script: any number of statements, DDL and data alike.
    pub sql: String,
    /// Run with `PRAGMA foreign_keys=OFF` (set before its transaction and
    /// restored after; `foreign_key_check` runs before its commit).
    #[serde(default)]
    pub foreign_keys_off: bool,
}

impl Migration {
    /// A migration with `foreign_keys` left as the arbiter has it.
    pub fn new(version: u64, name: impl Into<String>, sql: impl Into<String>) -> Migration {
        Migration {
            version,
            name: name.into(),
            sql: sql.into(),
            foreign_keys_off: false,
        }
    }

    /// The checksum recorded for it: of its text, so an edited migration
    /// that already ran is noticed (not a security measure).
    pub fn checksum(&self) -> String {
        format!("{:016x}", crate::paths::fnv1a(self.sql.as_bytes()))
    }
}

/// What a `migrate` call did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateReport {
    /// The database's version before the call.
    pub before: u64,
    /// Its version after.
    pub after: u64,
    /// The versions this call applied (empty when the database was
    /// already there).
    pub applied: Vec<u64>,
    /// True when the database is at a version past the caller's last
    /// migration (a newer program migrated it; this one may go on).
    pub newer: bool,
    /// The seq of the last commit (wait for it to read the new schema).
    pub seq: u64,
}

/// One applied migration, as `_scribe_migrations` records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationRecord {
    /// Its version.
    pub version: u64,
    /// Its name.
    pub name: String,
    /// The checksum of its text.
    pub checksum: String,
    /// When it was applied, milliseconds since the Unix epoch.
    pub applied_at_ms: i64,
}

/// Checks a list before anything runs: versions from 1 up, each one more
/// than the last (a list may start later when older steps were folded
/// away), names present.
///
/// # Errors
///
/// `Refused` naming the first problem.
pub fn check_list(list: &[Migration]) -> Result<(), WriteError> {
    let refuse = |reason: String| WriteError::Refused {
        statement: None,
        reason,
    };
    if list.is_empty() {
        return Err(refuse("no migrations were given".into()));
    }
    for (i, m) in list.iter().enumerate() {
        if m.version == 0 {
            return Err(refuse(format!(
                "migration {:?} has version 0; versions start at 1",
                m.name
            )));
        }
        if m.name.trim().is_empty() {
            return Err(refuse(format!("migration {} has no name", m.version)));
        }
        if let Some(prev) = i.checked_sub(1).map(|p| &list[p]) {
            if m.version != prev.version + 1 {
                return Err(refuse(format!(
                    "migration versions must follow each other without a gap: {} ({}) comes \
                     after {} ({})",
                    m.version, m.name, prev.version, prev.name
                )));
            }
        }
    }
    Ok(())
}

/// Refuses a migration that SQLite would apply cut short (it stops
/// reading a script at a NUL byte, applies what came before it, and the
/// step would be recorded as done), or whose text holds a directive
/// scribe does not understand (see [`directives`]). Checked for the migrations about to
/// run only (one applied by an older release, holding one, must still
/// match its record).
///
/// # Errors
///
/// `Refused` naming the migration and the offset.
pub fn check_text(m: &Migration) -> Result<(), WriteError> {
    let refuse = |what: String| WriteError::Refused {
        statement: None,
        reason: format!("migration {} ({}): {what}", m.version, m.name),
    };
    if let Some(nul) = crate::batch::nul_byte(&m.sql) {
        return Err(refuse(format!("it holds {nul}")));
    }
    directives(&m.sql).map(|_| ()).map_err(refuse)
}

impl Migration {
    /// Whether it runs with foreign keys off: asked by its field, or by
    /// its text's directive (a list built from files' text, with the field
    /// forgotten, must not run a table rebuild with them on). The text was
    /// checked by [`check_text`].
    pub fn wants_foreign_keys_off(&self) -> bool {
        self.foreign_keys_off || directives(&self.sql) == Ok(true)
    }
}

/// Reads a directory of migration files, `NNNN_name.sql` (the leading
/// digits are the version, the rest of the stem the name), in version
/// order (`.sql` in any case). A file whose opening comments hold
/// [`FOREIGN_KEYS_OFF`] runs with foreign keys off (see [`directives`]).
/// Other files are ignored.
///
/// # Errors
///
/// A message naming the directory or the file that could not be read, or
/// two files with one version.
pub fn from_dir(dir: &Path) -> Result<Vec<Migration>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut out: Vec<Migration> = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        if !path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("sql"))
        {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let digits: String = stem.chars().take_while(char::is_ascii_digit).collect();
        let Ok(version) = digits.parse::<u64>() else {
            continue;
        };
        let name = stem[digits.len()..]
            .trim_start_matches(['_', '-'])
            .to_owned();
        let sql = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let foreign_keys_off = directives(&sql).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(twin) = out.iter().find(|m| m.version == version) {
            return Err(format!(
                "{}: two migration files have version {version} ({} and {})",
                dir.display(),
                twin.name,
                name
            ));
        }
        out.push(Migration {
            version,
            name: if name.is_empty() {
                stem.to_owned()
            } else {
                name
            },
            sql,
            foreign_keys_off,
        });
    }
    out.sort_by_key(|m| m.version);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_reads_in_version_order_with_its_flags() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("0002_add_done.sql"),
            "ALTER TABLE t ADD done;",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("0001_init.sql"),
            format!("{FOREIGN_KEYS_OFF}\nCREATE TABLE t(a);"),
        )
        .unwrap();
        std::fs::write(dir.path().join("README.md"), "not a migration").unwrap();
        let list = from_dir(dir.path()).unwrap();
        assert_eq!(
            list.iter()
                .map(|m| (m.version, m.name.as_str(), m.foreign_keys_off))
                .collect::<Vec<_>>(),
            [(1, "init", true), (2, "add_done", false)]
        );
        assert!(check_list(&list).is_ok());
        std::fs::write(dir.path().join("0004_gap.sql"), "SELECT 1;").unwrap();
        let gap = check_list(&from_dir(dir.path()).unwrap()).unwrap_err();
        assert!(gap.to_string().contains("without a gap"), "{gap}");
    }
}
