//! THE path resolver: from a database path to every file scribe keeps
//! beside it. Every binary and library resolves paths here, so the arbiter
//! and its callers always agree on where the socket is.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::limits::MAX_SOCKET_PATH;

/// Environment variable naming the database when `--db` is not given.
pub const ENV_DB: &str = "SCRIBE_DB";
/// Environment variable overriding the socket path.
pub const ENV_SOCKET: &str = "SCRIBE_SOCKET";

/// Every path that belongs to one database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    /// The database file (absolute).
    pub db: PathBuf,
    /// `<db>.scribe.lock`: the arbiter holds `flock` on it for its whole
    /// life; it also records pid, start time and socket for humans.
    pub lock: PathBuf,
    /// The RPC socket: `<db>.scribe.sock`, or a short path under
    /// `$XDG_RUNTIME_DIR` (else `/tmp`) when that would be too long.
    pub socket: PathBuf,
    /// The HTTP socket: `<db>.scribe.http.sock`, with the same fallback.
    pub http_socket: PathBuf,
    /// `<db>.scribe.log`: stdout and stderr of an auto-started arbiter.
    pub log: PathBuf,
    /// `<db>.scribe.stopping`: while present and not expired, auto-start
    /// does not respawn the arbiter.
    pub stop_marker: PathBuf,
    /// `<db>.scribe.conf`: the arbiter's settings (`name = value` lines).
    pub config: PathBuf,
}

impl Paths {
    /// Resolves from an explicit database path, else `SCRIBE_DB`; the
    /// socket from `socket`, else `SCRIBE_SOCKET`, else the default.
    ///
    /// # Errors
    ///
    /// [`Error::NoDatabase`] when no database is named; [`Error::Resolve`]
    /// when a relative path cannot be made absolute.
    pub fn resolve(db: Option<&Path>, socket: Option<&Path>) -> Result<Paths, Error> {
        let db = match db {
            Some(p) => p.to_path_buf(),
            None => std::env::var_os(ENV_DB)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .ok_or(Error::NoDatabase)?,
        };
        let socket = socket.map(Path::to_path_buf).or_else(|| {
            std::env::var_os(ENV_SOCKET)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        Paths::for_db(&db, socket)
    }

    /// Resolves the paths of `db`, with an optional explicit socket.
    ///
    /// # Errors
    ///
    /// [`Error::Resolve`] when a relative path cannot be made absolute;
    /// [`Error::Directory`] when it names a directory.
    pub fn for_db(db: &Path, socket: Option<PathBuf>) -> Result<Paths, Error> {
        let db = canonical(&absolute(db)?);
        if db.is_dir() {
            return Err(Error::Directory(db));
        }
        let socket = match socket {
            Some(s) => absolute(&s)?,
            None => default_socket(&db, "sock"),
        };
        let http_socket = default_socket(&db, "http.sock");
        Ok(Paths {
            lock: with_suffix(&db, ".scribe.lock"),
            log: with_suffix(&db, ".scribe.log"),
            stop_marker: with_suffix(&db, ".scribe.stopping"),
            config: with_suffix(&db, ".scribe.conf"),
            socket,
            http_socket,
            db,
        })
    }

    /// Whether the RPC socket was given (`--socket`, `SCRIBE_SOCKET`)
    /// rather than derived from the database's path.
    pub fn socket_given(&self) -> bool {
        self.socket != default_socket(&self.db, "sock")
    }

    /// The `-wal` file of the database.
    pub fn wal(&self) -> PathBuf {
        with_suffix(&self.db, "-wal")
    }
}

fn absolute(p: &Path) -> Result<PathBuf, Error> {
    std::path::absolute(p).map_err(|source| Error::Resolve {
        path: p.to_path_buf(),
        source,
    })
}

/// The database path with its directory resolved (symlinks, `..`) when the
/// directory exists, so that every spelling of one database derives the
/// same socket name. The file itself may not exist yet; when it is a
/// symlink, it is followed (as SQLite follows it to name the WAL), so a
/// link reaches the arbiter of the file it points at.
fn canonical(db: &Path) -> PathBuf {
    if db.is_symlink() {
        // Made or not yet (SQLite creates the target), the target names
        // it, as far as the links go (Python's realpath does the same).
        let mut at = db.to_path_buf();
        for _ in 0..40 {
            let Ok(next) = std::fs::read_link(&at) else {
                break;
            };
            at = match at.parent() {
                Some(dir) if next.is_relative() => dir.join(next),
                _ => next,
            };
            if !at.is_symlink() {
                break;
            }
        }
        return canonical_dir(&at);
    }
    canonical_dir(db)
}

/// `db` with its directory resolved, when the directory exists.
fn canonical_dir(db: &Path) -> PathBuf {
    match (db.parent(), db.file_name()) {
        (Some(dir), Some(name)) => match std::fs::canonicalize(dir) {
            Ok(dir) => dir.join(name),
            Err(_) => db.to_path_buf(),
        },
        _ => db.to_path_buf(),
    }
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn default_socket(db: &Path, kind: &str) -> PathBuf {
    let beside = with_suffix(db, &format!(".scribe.{kind}"));
    if beside.as_os_str().len() <= MAX_SOCKET_PATH {
        return beside;
    }
    let name = format!(
        "scribe-{:016x}.{kind}",
        fnv1a(db.as_os_str().as_encoded_bytes())
    );
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .filter(|d| d.join(&name).as_os_str().len() <= MAX_SOCKET_PATH)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    dir.join(name)
}

/// FNV-1a: stable across builds and platforms (std's hasher is not), so
/// every process derives the same fallback socket name, and a stored
/// fingerprint means the same after an upgrade.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_to_the_file_names_its_target_made_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        let link = dir.path().join("link.db");
        // Dangling: SQLite would create the target, so it is the name.
        std::os::unix::fs::symlink("data/app.db", &link).unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let p = Paths::for_db(&link, None).unwrap();
        assert_eq!(p.db, real.join("data/app.db"));
        std::fs::write(dir.path().join("data/app.db"), b"").unwrap();
        assert_eq!(Paths::for_db(&link, None).unwrap().db, p.db);
    }

    #[test]
    fn beside_the_database_when_short() {
        let p = Paths::for_db(Path::new("/data/app.db"), None).unwrap();
        assert_eq!(p.lock, Path::new("/data/app.db.scribe.lock"));
        assert_eq!(p.socket, Path::new("/data/app.db.scribe.sock"));
        assert_eq!(p.http_socket, Path::new("/data/app.db.scribe.http.sock"));
        assert_eq!(p.log, Path::new("/data/app.db.scribe.log"));
        assert_eq!(p.wal(), Path::new("/data/app.db-wal"));
    }

    #[test]
    fn long_paths_fall_back_to_a_short_stable_socket() {
        let long = format!("/{}/app.db", "d".repeat(120));
        let a = Paths::for_db(Path::new(&long), None).unwrap();
        let b = Paths::for_db(Path::new(&long), None).unwrap();
        assert_eq!(a.socket, b.socket);
        assert!(a.socket.as_os_str().len() <= MAX_SOCKET_PATH);
        assert!(a
            .socket
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("scribe-"));
        let other = Paths::for_db(Path::new(&format!("{long}2")), None).unwrap();
        assert_ne!(a.socket, other.socket);
    }

    #[test]
    fn relative_paths_become_absolute() {
        let p = Paths::for_db(Path::new("rel.db"), None).unwrap();
        assert!(p.db.is_absolute());
    }

    #[test]
    fn every_spelling_of_a_database_gets_the_same_paths() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let a = Paths::for_db(&sub.join("x.db"), None).unwrap();
        let b = Paths::for_db(&sub.join("..").join("sub").join("x.db"), None).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn explicit_socket_wins() {
        let p = Paths::for_db(Path::new("/x/a.db"), Some("/run/s.sock".into())).unwrap();
        assert_eq!(p.socket, Path::new("/run/s.sock"));
    }
}
