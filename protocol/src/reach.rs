//! Which socket reaches a database's arbiter, and who may answer there.
//!
//! A socket's name can be taken by another local user before the arbiter
//! binds it: the hashed fallback under `$XDG_RUNTIME_DIR` or `/tmp` for a
//! path too long for a socket (a name anyone can compute), or a name
//! beside a database that lives in a shared sticky directory. A client
//! would then send its SQL to that user and believe the answers. So a
//! client asks the kernel who answers (`SO_PEERCRED`) and talks only to a
//! process that could be the database's arbiter: one whose user may write
//! the database file (root, its owner, a member of its group when the
//! group may write it, anyone when everyone may), or itself; and, when no
//! process holds the database's lock, to nobody. An arbiter that finds
//! its socket's name taken by a file it cannot replace binds a name of
//! its own beside it and records it in the lock record, which a client of
//! a derived (not given) socket follows when a user who may write the
//! database wrote the record.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::lockfile;
use crate::paths::Paths;

/// Which of the arbiter's two sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The framed protocol's socket.
    Rpc,
    /// The HTTP socket.
    Http,
}

/// Who may answer on a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answerer {
    /// A process of a user who may write the database (see the module).
    Writer,
    /// Nobody: no process holds the database's lock, so no arbiter serves
    /// it, whatever listens on the name.
    Nobody,
}

/// Where to connect, and who must answer there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach {
    /// The socket to connect to.
    pub path: PathBuf,
    /// Who may answer on it.
    pub answerer: Answerer,
}

/// The socket `which` of `paths`' database, as a client should reach it.
pub fn reach(paths: &Paths, which: Which) -> Reach {
    let (default, given) = match which {
        Which::Rpc => (&paths.socket, paths.socket_given()),
        Which::Http => (&paths.http_socket, false),
    };
    if lockfile::is_held(paths).ok() == Some(false) {
        return Reach {
            path: default.clone(),
            answerer: Answerer::Nobody,
        };
    }
    let recorded = (!given)
        .then(|| trusted_record(paths))
        .flatten()
        .and_then(|info| match which {
            Which::Rpc => info.socket,
            Which::Http => info.http_socket,
        });
    Reach {
        path: recorded.unwrap_or_else(|| default.clone()),
        answerer: Answerer::Writer,
    }
}

/// The lock record, when a user who may write the database wrote it (in
/// a sticky directory another user may have made one first).
fn trusted_record(paths: &Paths) -> Option<lockfile::LockInfo> {
    let owner = std::fs::symlink_metadata(&paths.lock).ok()?.uid();
    may_write(&paths.db, owner, None).then(|| lockfile::read_info(&paths.lock))
}

/// Whether the user `uid` (of primary group `gid`, when known) may write
/// the database file `db`, as far as this process can tell; this
/// process's own user always may (it answers to itself).
pub fn may_write(db: &Path, uid: u32, gid: Option<u32>) -> bool {
    if uid == 0 || uid == nix::unistd::geteuid().as_raw() {
        return true;
    }
    let Ok(meta) = std::fs::metadata(db) else {
        return false;
    };
    let mode = meta.mode();
    uid == meta.uid() || mode & 0o002 != 0 || (mode & 0o020 != 0 && in_group(uid, gid, meta.gid()))
}

/// Whether `uid` is a member of group `group`: its primary group, or one
/// of the groups the system lists for it.
fn in_group(uid: u32, gid: Option<u32>, group: u32) -> bool {
    if gid == Some(group) {
        return true;
    }
    let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
        return false;
    };
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return false;
    };
    nix::unistd::getgrouplist(&name, user.gid)
        .is_ok_and(|groups| groups.iter().any(|g| g.as_raw() == group))
}

impl Reach {
    /// Whether the process that answers, of user `uid` and group `gid`
    /// (from `SO_PEERCRED`; `None` when the kernel could not say), may
    /// answer here; else why not, for people.
    ///
    /// # Errors
    ///
    /// The reason the answering process is not this database's arbiter.
    pub fn check(&self, peer: Option<(u32, u32)>, db: &Path) -> Result<(), String> {
        let who = peer.map_or_else(|| "a process".to_owned(), |(u, _)| format!("uid {u}"));
        let taken = "another user has taken the socket's name; nothing was sent to it";
        match (self.answerer, peer) {
            (Answerer::Writer, Some((uid, gid))) if may_write(db, uid, Some(gid)) => Ok(()),
            (Answerer::Writer, _) => Err(format!(
                "{who} answers on {}, and may not write {}, so it is not its arbiter: {taken}",
                self.path.display(),
                db.display()
            )),
            (Answerer::Nobody, _) => Err(format!(
                "{who} answers on {}, but no arbiter holds {}: {taken}",
                self.path.display(),
                db.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_user_who_may_write_the_database_answers_and_none_without_its_lock() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::for_db(&dir.path().join("x.db"), None).unwrap();
        let r = reach(&paths, Which::Rpc);
        assert_eq!(r.answerer, Answerer::Nobody, "no database, no lock");
        let e = r.check(Some((7, 7)), &paths.db).unwrap_err();
        assert!(e.contains("uid 7") && e.contains("no arbiter holds"), "{e}");
        let mut lock = lockfile::InstanceLock::try_acquire(&paths)
            .unwrap()
            .unwrap();
        lock.record(Path::new("/aside.sock"), Path::new("/aside.http"))
            .unwrap();
        let r = reach(&paths, Which::Rpc);
        assert_eq!(r.answerer, Answerer::Writer);
        // The record (this user's) is followed for a derived socket.
        assert_eq!(r.path, Path::new("/aside.sock"));
        assert_eq!(reach(&paths, Which::Http).path, Path::new("/aside.http"));
        let me = nix::unistd::geteuid().as_raw();
        assert!(r.check(Some((me, 0)), &paths.db).is_ok());
        assert!(r.check(Some((0, 0)), &paths.db).is_ok());
        assert!(r.check(None, &paths.db).is_err());
        if me == 0 {
            // The file is root's and 0644 (or less): another user may not.
            assert!(r.check(Some((65534, 65534)), &paths.db).is_err());
        }
        // A given socket is kept.
        let given = Paths::for_db(&paths.db, Some(dir.path().join("elsewhere/x.sock"))).unwrap();
        assert_eq!(reach(&given, Which::Rpc).path, given.socket);
    }
}
