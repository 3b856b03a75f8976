//! An arbiter that root starts for a database another user owns runs as
//! that user: otherwise its sockets and files would be root's, and once
//! it stopped or died the owner could not start one again (SQLite gives
//! its `-wal` and `-shm` files the database file's owner for the same
//! reason); and it would run that user's `.scribe.conf` (extensions
//! included) as root. An administrator's one `sudo scribe exec` then
//! leaves the database as it found it.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{fchmod, fstat, Mode, SFlag};
use nix::unistd::{Gid, Uid, User};

/// Whom root starts the arbiter of `db` as.
pub(super) struct Owner {
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    user: Option<User>,
}

impl Owner {
    /// The uid it runs as.
    pub(super) fn uid(&self) -> u32 {
        self.uid.as_raw()
    }
}

/// The owner of `db` (of its directory while it is not made yet), with
/// that user's groups; `None` when this process is not root, the owner
/// is root, or the directory is root's alone (root's, writable by no
/// group or other: a database copied into root's directory, say, stays
/// root's to serve, as before). Whether it drops is never the user's to
/// decide: a directory of the user's, whatever its mode, means the user.
pub(super) fn owner_of(db: &Path) -> Option<Owner> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let dir = db.parent().filter(|d| !d.as_os_str().is_empty())?;
    let dir_meta = std::fs::metadata(dir).ok()?;
    let owner_uid = std::fs::metadata(db).map_or(dir_meta.uid(), |m| m.uid());
    if owner_uid == 0 {
        return None;
    }
    let uid = Uid::from_raw(owner_uid);
    let user = User::from_uid(uid).ok().flatten();
    // A uid with no account: the directory's group is all there is.
    let (gid, groups) = match &user {
        Some(u) => {
            let groups = CString::new(u.name.as_bytes())
                .ok()
                .and_then(|name| nix::unistd::getgrouplist(&name, u.gid).ok())
                .unwrap_or_else(|| vec![u.gid]);
            (u.gid, groups)
        }
        None => (Gid::from_raw(dir_meta.gid()), Vec::new()),
    };
    let roots_alone = dir_meta.uid() == 0 && dir_meta.mode() & 0o022 == 0;
    (!roots_alone).then_some(Owner {
        uid,
        gid,
        groups,
        user,
    })
}

/// Makes `cmd` run as `owner` (see the module's doc), with an
/// environment of its own (root's is not the owner's to read, in
/// `/proc/PID/environ`), its output appended to `log`, which that process
/// opens itself once it is the owner: root never makes or opens a file
/// in the owner's directory, where a link or a swapped directory could
/// send it elsewhere. A log it makes gets `mode`.
pub(super) fn run_as(
    cmd: &mut Command,
    owner: Owner,
    log: &Path,
    mode: u32,
) -> std::io::Result<()> {
    tracing::info!(
        uid = owner.uid.as_raw(),
        gid = owner.gid.as_raw(),
        "starting the arbiter as the database's owner"
    );
    let kept: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("SCRIBE_")
                || k.starts_with("RUST_")
                || k.starts_with("LC_")
                || matches!(k.as_str(), "PATH" | "LANG" | "TZ")
        })
        .collect();
    cmd.env_clear().envs(kept);
    if let Some(u) = &owner.user {
        cmd.env("HOME", &u.dir)
            .env("USER", &u.name)
            .env("LOGNAME", &u.name);
    }
    let log = CString::new(log.as_os_str().as_bytes())?;
    let mode = Mode::from_bits_truncate(mode as nix::libc::mode_t);
    let Owner {
        uid, gid, groups, ..
    } = owner;
    // SAFETY: only system calls between fork and exec (setgroups, setgid,
    // setuid, open, fstat, fchmod, dup2: async-signal-safe); the group
    // list and the path were made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            match nix::unistd::setgroups(&groups) {
                // Root without CAP_SETGID (a container that dropped it):
                // nothing changed yet, so it runs as root, as it did.
                Err(Errno::EPERM) => {}
                other => {
                    other?;
                    nix::unistd::setgid(gid)?;
                    nix::unistd::setuid(uid)?;
                }
            }
            append_output_to(&log, mode)
        });
    }
    Ok(())
}

/// Opens `log` (making it with `mode`, never through a link, a FIFO or
/// anything but a regular file) as this process's stdout and stderr: the
/// rules of `Like::append`, in system calls alone, since it runs between
/// fork and exec, where nothing may allocate.
fn append_output_to(log: &CString, mode: Mode) -> std::io::Result<()> {
    let flags = OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    let fd = match open(log.as_c_str(), flags | OFlag::O_CREAT | OFlag::O_EXCL, mode) {
        Ok(fd) => {
            let _ = fchmod(&fd, mode); // past the umask, as SQLite's -wal
            fd
        }
        Err(Errno::EEXIST) => open(log.as_c_str(), flags, Mode::empty())?,
        Err(e) => return Err(e.into()),
    };
    if SFlag::from_bits_truncate(fstat(&fd)?.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(Errno::EINVAL.into());
    }
    for target in [1, 2] {
        // SAFETY: dup2 onto the standard descriptors, which exec keeps.
        if unsafe { nix::libc::dup2(fd.as_raw_fd(), target) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
