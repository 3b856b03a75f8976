//! One database file, one name. SQLite keeps the WAL beside the name a
//! file is opened by, so a file with several names (hard links) is read
//! and served through one only: the one an arbiter serves it by (its
//! lock record, written by a process that still runs, lies beside that
//! name); with none serving it, through none, and no arbiter starts on
//! it (a start under another name after a crash wrote over the commits
//! in the first name's WAL).

use std::path::Path;

use crate::lockfile::{is_held, read_info};
use crate::paths::Paths;

/// True when `paths.db` has another name (a hard link) and an arbiter
/// holds the file while no lock record lies beside this name: it serves
/// the file under the other name. SQLite keeps the WAL beside the name,
/// so readers through this one miss the latest commits, and no arbiter
/// will ever answer on this name's socket.
pub fn served_under_another_name(paths: &Paths) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(&paths.db).is_ok_and(|m| m.nlink() > 1)
        && !recorded_by_a_live_process(paths)
        && is_held(paths).unwrap_or(false)
}

/// Whether the lock record beside this name was written by a process
/// that still runs: the arbiter that holds the file serves it under this
/// name. A record is left behind when its arbiter stops, and a database
/// renamed away leaves it beside the old name (helper 89: a hard link
/// made there later passed for the served name, its reads stale).
fn recorded_by_a_live_process(paths: &Paths) -> bool {
    // A zombie has exited (where nothing reaps orphans, an arbiter that
    // stopped stays one).
    read_info(&paths.lock)
        .pid
        .is_some_and(|pid| pid != 0 && crate::procstate::alive(pid))
}

/// Why the database must not be read or served through `paths.db`
/// because the file has more than one name (hard links), if it has: an
/// arbiter serves it under another name (see
/// [`served_under_another_name`]), or none serves it, and none will
/// start on it ([`several_names_message`]). `None` for a file with one
/// name, or served under this one.
pub fn name_trouble(paths: &Paths) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let links = std::fs::metadata(&paths.db).map_or(1, |m| m.nlink());
    if links <= 1 {
        return None;
    }
    match is_held(paths) {
        Ok(true) if recorded_by_a_live_process(paths) => None,
        Ok(true) => Some(another_name_message(paths)),
        _ => Some(several_names_message(&paths.db, links)),
    }
}

/// Why no arbiter serves a database file with `links` names.
pub fn several_names_message(db: &Path, links: u64) -> String {
    let path = db.display();
    format!(
        "database {path} has {links} names (hard links): SQLite keeps the WAL beside the name a \
         file is opened by, so commits made through one name are missed through another and can \
         be lost; scribe serves a file with one name only. Remove the other links (`find \
         \"$(stat -c %m {path})\" -xdev -samefile {path}` lists them), keeping the name whose \
         -wal file exists, if one does"
    )
}

/// What to tell a caller who named the database by such a name.
pub fn another_name_message(paths: &Paths) -> String {
    format!(
        "{} is another name (a hard link) of a database an arbiter serves under its own name: \
         reads through this name would miss its latest commits (SQLite keeps the WAL beside \
         the name), and no arbiter answers on this name's socket; use that name",
        paths.db.display()
    )
}
