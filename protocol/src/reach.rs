//! Which socket reaches a database's arbiter, and who may answer on it.
//!
//! A socket beside the database can only be made by someone who may write
//! its directory (who could write the database anyway). A socket outside
//! it — the fallback under `$XDG_RUNTIME_DIR` or `/tmp` for a path too
//! long for a socket, or a `--socket` elsewhere — has a name any local
//! user can compute and take first: a client would then send its SQL to
//! that user and believe the answers. So there the client asks the kernel
//! who answers (`SO_PEERCRED`) and talks only to the process that holds
//! the database's lock, as its lock record names it. The arbiter, finding
//! the fallback name taken by a file it cannot replace, binds a name of
//! its own beside it and records that; a client of the default follows
//! the record.

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
    /// Anyone: the socket is beside the database, or the lock record
    /// cannot say (it could not be written).
    Anyone,
    /// Only this process: the holder of the database's lock.
    Pid(u32),
    /// Nobody: no process holds the lock, so no arbiter serves this
    /// database, whatever listens on the name.
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
    if !paths.is_outside(default) {
        return Reach {
            path: default.clone(),
            answerer: Answerer::Anyone,
        };
    }
    match lockfile::is_held(paths) {
        Ok(true) => {}
        Ok(false) => {
            return Reach {
                path: default.clone(),
                answerer: Answerer::Nobody,
            }
        }
        // Cannot tell (the file cannot be opened): as before, anyone.
        Err(_) => {
            return Reach {
                path: default.clone(),
                answerer: Answerer::Anyone,
            }
        }
    }
    let info = lockfile::read_info(&paths.lock);
    let recorded = match which {
        Which::Rpc => info.socket,
        Which::Http => info.http_socket,
    };
    Reach {
        path: recorded
            .filter(|_| !given)
            .unwrap_or_else(|| default.clone()),
        answerer: info.pid.map_or(Answerer::Anyone, Answerer::Pid),
    }
}

impl Reach {
    /// Whether the process `peer` (from `SO_PEERCRED`; `None` when the
    /// kernel could not say) may answer here; else why not, for people.
    ///
    /// # Errors
    ///
    /// The reason the answering process is not this database's arbiter.
    pub fn check(&self, peer: Option<u32>, db: &Path) -> Result<(), String> {
        let who = peer.map_or_else(|| "a process".to_owned(), |p| format!("pid {p}"));
        match self.answerer {
            Answerer::Anyone => Ok(()),
            Answerer::Pid(pid) if peer == Some(pid) => Ok(()),
            Answerer::Pid(pid) => Err(format!(
                "{who} answers on {}, but the arbiter of {} is pid {pid}: another process \
                 has taken the socket's name; nothing was sent to it",
                self.path.display(),
                db.display()
            )),
            Answerer::Nobody => Err(format!(
                "{who} answers on {}, but no arbiter holds {}: another process has taken \
                 the socket's name; nothing was sent to it",
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
    fn beside_the_database_anyone_answers_outside_only_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::for_db(&dir.path().join("x.db"), None).unwrap();
        let near = reach(&paths, Which::Rpc);
        assert_eq!(near.answerer, Answerer::Anyone);
        assert!(near.check(Some(1), &paths.db).is_ok());
        let away = Paths::for_db(
            &dir.path().join("x.db"),
            Some(dir.path().join("elsewhere/x.sock")),
        )
        .unwrap();
        let r = reach(&away, Which::Rpc);
        assert_eq!(r.answerer, Answerer::Nobody, "no lock held");
        let e = r.check(Some(7), &away.db).unwrap_err();
        assert!(e.contains("pid 7") && e.contains("no arbiter holds"), "{e}");
        let mut lock = lockfile::InstanceLock::try_acquire(&away).unwrap().unwrap();
        lock.record(Path::new("/other.sock"), Path::new("/other.http"))
            .unwrap();
        let r = reach(&away, Which::Rpc);
        // A given socket is kept; the holder must answer on it.
        assert_eq!(r.path, away.socket);
        assert_eq!(r.answerer, Answerer::Pid(std::process::id()));
        assert!(r.check(Some(std::process::id()), &away.db).is_ok());
        assert!(r.check(Some(1), &away.db).is_err());
        assert!(r.check(None, &away.db).is_err());
    }

    #[test]
    fn a_derived_socket_outside_follows_the_lock_record() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let paths = Paths::for_db(&deep.join("x.db"), None).unwrap();
        assert!(paths.is_outside(&paths.socket) && !paths.socket_given());
        let mut lock = lockfile::InstanceLock::try_acquire(&paths)
            .unwrap()
            .unwrap();
        lock.record(Path::new("/aside.sock"), Path::new("/aside.http"))
            .unwrap();
        assert_eq!(reach(&paths, Which::Rpc).path, Path::new("/aside.sock"));
        assert_eq!(reach(&paths, Which::Http).path, Path::new("/aside.http"));
    }
}
