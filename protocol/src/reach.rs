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
pub(crate) fn trusted_record(paths: &Paths) -> Option<lockfile::LockInfo> {
    let owner = std::fs::symlink_metadata(&paths.lock).ok()?.uid();
    may_write(&paths.db, &Peer::user(owner)).then(|| lockfile::read_info(&paths.lock))
}

/// Who answers on a socket, as the kernel says (`SO_PEERCRED`, and on
/// Linux `SO_PEERGROUPS`: groups given at run time count too).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    /// Its user.
    pub uid: u32,
    /// Its primary group, when known.
    pub gid: Option<u32>,
    /// Its supplementary groups, when known.
    pub groups: Vec<u32>,
}

impl Peer {
    /// A user alone (groups from the system's lists).
    pub fn user(uid: u32) -> Peer {
        Peer {
            uid,
            ..Peer::default()
        }
    }

    /// The peer of the connected socket `fd`, from its credentials.
    pub fn of(fd: std::os::fd::RawFd, uid: u32, gid: u32) -> Peer {
        Peer {
            uid,
            gid: Some(gid),
            groups: peer_groups(fd),
        }
    }
}

/// Whether `peer` may write the database file `db`, as far as this
/// process can tell; this process's own user always may (it answers to
/// itself).
pub fn may_write(db: &Path, peer: &Peer) -> bool {
    let uid = peer.uid;
    if uid == 0 || uid == nix::unistd::geteuid().as_raw() {
        return true;
    }
    let Ok(meta) = std::fs::metadata(db) else {
        return false;
    };
    let mode = meta.mode();
    uid == meta.uid() || mode & 0o002 != 0 || (mode & 0o020 != 0 && in_group(peer, meta.gid()))
}

/// Whether `peer` is a member of group `group`: its primary group, one
/// it was given at run time, or one the system lists for its user.
fn in_group(peer: &Peer, group: u32) -> bool {
    if peer.gid == Some(group) || peer.groups.contains(&group) {
        return true;
    }
    let uid = peer.uid;
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
    /// Why the socket's path cannot be trusted before connecting: scribe
    /// never makes a symbolic link there, and one another user planted
    /// could lead to an arbiter of this user's serving another database.
    ///
    /// # Errors
    ///
    /// The reason, for people.
    pub fn check_path(&self, given: bool) -> Result<(), String> {
        let link = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.file_type().is_symlink());
        if link && !given {
            return Err(format!(
                "{} is a symbolic link, which scribe never makes (another user may have \
                 planted it): nothing was sent to it",
                self.path.display()
            ));
        }
        Ok(())
    }

    /// Whether `peer`, the process that answers (`None` when the kernel
    /// could not say), may answer here; else why not, for people.
    ///
    /// # Errors
    ///
    /// The reason the answering process is not this database's arbiter.
    pub fn check(&self, peer: Option<&Peer>, db: &Path) -> Result<(), String> {
        let who = peer.map_or_else(|| "a process".to_owned(), |p| format!("uid {}", p.uid));
        let taken = "another user has taken the socket's name; nothing was sent to it";
        match (self.answerer, peer) {
            (Answerer::Writer, Some(p)) if may_write(db, p) => Ok(()),
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

/// The supplementary groups the peer of the socket `fd` had at `connect`
/// (empty when they cannot be read).
#[cfg(target_os = "linux")]
pub fn peer_groups(fd: std::os::fd::RawFd) -> Vec<u32> {
    use nix::libc::{self, SO_PEERGROUPS};
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    for _ in 0..2 {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: the buffer is `len` bytes of gid_t, which the kernel fills
        // and whose used length it writes back to `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(n);
            return groups;
        }
        // ERANGE: the buffer was short, and `len` says how long it must be.
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::ERANGE) {
            return Vec::new();
        }
        groups.resize(n.max(groups.len() + 1), 0);
    }
    Vec::new()
}

/// Elsewhere only the primary group counts.
#[cfg(not(target_os = "linux"))]
pub fn peer_groups(_fd: std::os::fd::RawFd) -> Vec<u32> {
    Vec::new()
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
        let e = r.check(Some(&Peer::user(7)), &paths.db).unwrap_err();
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
        assert!(r.check(Some(&Peer::user(me)), &paths.db).is_ok());
        assert!(r.check(Some(&Peer::user(0)), &paths.db).is_ok());
        assert!(r.check(None, &paths.db).is_err());
        if me == 0 {
            // The file is root's and 0644 (or less): another user may not.
            assert!(r.check(Some(&Peer::user(65534)), &paths.db).is_err());
            // In the file's group at run time, with the group allowed to
            // write: it may.
            std::fs::set_permissions(
                &paths.db,
                std::os::unix::fs::PermissionsExt::from_mode(0o660),
            )
            .unwrap();
            let given_group = Peer {
                uid: 65534,
                gid: Some(65534),
                groups: vec![0],
            };
            assert!(r.check(Some(&given_group), &paths.db).is_ok());
        }
        // A given socket is kept.
        let given = Paths::for_db(&paths.db, Some(dir.path().join("elsewhere/x.sock"))).unwrap();
        assert_eq!(reach(&given, Which::Rpc).path, given.socket);
    }
}
