//! An arbiter whose start failed (a migration at open that fails, a file
//! that is not a database) records why in its lock record before it lets
//! the lock go: `failed_at=<unix ms>`, `failed=<why>` and, with migrations
//! at open, `failed_dir=<dir>`.
//!
//! Auto-starters read it and hold back for [`HOLD`], saying why at once,
//! rather than each start another arbiter that fails the same way. Without
//! it, one retrying client started an arbiter every half second (45 starts
//! in 30 s, each applying the migrations again and rolling them back).
//!
//! The hold lifts early once anything the start depends on changed since:
//! the database file, its settings file (`<db>.scribe.conf`), the
//! migrations directory or a migration in it. The record carries a
//! fingerprint of their inode, size and status-change time (which an
//! edit, a rename, a `chmod` all move), `failed_inputs=<hex>`, taken after
//! the failed arbiter closed the database; a client takes it again and
//! compares. An explicit `scribe start` never holds back.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::paths::Paths;
use crate::{lockfile, reach};

/// How long after a failed start auto-starters hold back, unless its
/// inputs change.
pub const HOLD: Duration = Duration::from_secs(10);

/// A failed start, as its record tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedStart {
    /// The arbiter that failed.
    pub pid: Option<u32>,
    /// Why, as it said in its log.
    pub why: String,
    /// How long ago.
    pub ago: Duration,
}

impl FailedStart {
    /// What an auto-starter that holds back says.
    pub fn describe(&self, paths: &Paths) -> String {
        format!(
            "its arbiter failed to start {} s ago: {} — auto-start holds back for {} s after a \
             failed start, unless the database, {} or the migrations change; `scribe --db {} \
             start` tries again at once",
            self.ago.as_secs(),
            self.why,
            HOLD.as_secs(),
            paths.config.display(),
            paths.db.display()
        )
    }
}

/// The failed start that holds auto-start back for `paths`, if any: one
/// recorded by a user who may write the database, less than [`HOLD`] ago,
/// with nothing it depends on changed since, and no arbiter holding the
/// lock now.
pub fn holding_back(paths: &Paths) -> Option<FailedStart> {
    let last = last(paths)?;
    (last.ago < HOLD).then_some(last)
}

/// The last failed start recorded for `paths`, whatever its age (for
/// `status`), unless something it depends on changed since or an arbiter
/// holds the lock now.
pub fn last(paths: &Paths) -> Option<FailedStart> {
    let info = reach::trusted_record(paths)?;
    let (why, at, then) = (info.failed?, info.failed_at?, info.failed_inputs?);
    if lockfile::is_held(paths).unwrap_or(true) {
        return None;
    }
    if inputs(paths, info.failed_dir.as_deref()) != then {
        return None;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Some(FailedStart {
        pid: info.pid,
        why,
        ago: Duration::from_millis(now.saturating_sub(at)),
    })
}

/// The fingerprint of what a start depends on (see the module's doc):
/// FNV-1a of one line per file, `ino:size:ctime_s.ctime_ns` or `-` when
/// absent: the database, its settings file, then, with `migrations`, the
/// directory and each entry in it in byte order of their names. The
/// Python client computes the same.
pub fn inputs(paths: &Paths, migrations: Option<&Path>) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut text = String::new();
    let mut line = |p: &Path| match std::fs::metadata(p) {
        Ok(m) => text.push_str(&format!(
            "{}:{}:{}.{}\n",
            m.ino(),
            m.size(),
            m.ctime(),
            m.ctime_nsec()
        )),
        Err(_) => text.push_str("-\n"),
    };
    line(&paths.db);
    line(&paths.config);
    if let Some(dir) = migrations {
        line(dir);
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            line(&dir.join(name));
        }
    }
    format!("{:016x}", crate::paths::fnv1a(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockfile::InstanceLock;

    fn failed(dir: &Path, migrations: Option<&Path>) -> Paths {
        let paths = Paths::for_db(&dir.join("d.db"), None).unwrap();
        let mut lock = InstanceLock::try_acquire(&paths).unwrap().unwrap();
        lock.record_failed(&paths, "migration 2 failed:\nno such table: x", migrations)
            .unwrap();
        let again = lockfile::read_info(&paths.lock).failed_inputs;
        assert_eq!(again, Some(inputs(&paths, migrations)));
        assert!(holding_back(&paths).is_none(), "held while the lock is");
        drop(lock);
        paths
    }

    #[test]
    fn holds_back_with_the_reason_until_the_database_changes() {
        let dir = tempfile::tempdir().unwrap();
        let paths = failed(dir.path(), None);
        let held = holding_back(&paths).expect("held back");
        assert_eq!(held.why, "migration 2 failed: no such table: x");
        assert_eq!(held.pid, Some(std::process::id()));
        let said = held.describe(&paths);
        assert!(said.contains("failed to start 0 s ago"), "{said}");
        assert!(said.contains("start` tries again at once"), "{said}");
        std::fs::write(&paths.config, "synchronous = full\n").unwrap();
        assert!(holding_back(&paths).is_none(), "the settings changed");
    }

    #[test]
    fn a_migration_edited_in_place_lifts_the_hold() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("m");
        std::fs::create_dir(&m).unwrap();
        std::fs::write(m.join("0001_a.sql"), "CREATE TABLE a(x);").unwrap();
        let paths = failed(dir.path(), Some(&m));
        assert!(holding_back(&paths).is_some());
        // The same size, in place.
        std::fs::write(m.join("0001_a.sql"), "CREATE TABLE b(y);").unwrap();
        assert!(holding_back(&paths).is_none(), "a migration changed");
    }

    #[test]
    fn a_record_without_a_failure_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::for_db(&dir.path().join("d.db"), None).unwrap();
        let mut lock = InstanceLock::try_acquire(&paths).unwrap().unwrap();
        lock.record_starting("opening").unwrap();
        drop(lock);
        assert!(holding_back(&paths).is_none());
    }
}
