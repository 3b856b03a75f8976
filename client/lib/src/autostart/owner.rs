//! An arbiter that root starts for a database another user owns runs as
//! that user: otherwise its sockets and files would be root's, and once
//! it stopped or died the owner could not start one again (SQLite gives
//! its `-wal` and `-shm` files the database file's owner for the same
//! reason). An administrator's one `sudo scribe exec` then leaves the
//! database as it found it.

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::unistd::{Gid, Uid, User};

/// Whom root starts the arbiter of `db` as: the file's owner, with the
/// owner's groups (the directory may be writable through one of them).
/// `None` when this process is not root, or the file is root's or not
/// made yet.
fn owner_of(db: &Path) -> Option<(Uid, Gid, Vec<Gid>)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let m = std::fs::metadata(db).ok()?;
    if m.uid() == 0 {
        return None;
    }
    let uid = Uid::from_raw(m.uid());
    // A uid with no account: its file's group is all there is to go by.
    let (gid, groups) = match User::from_uid(uid).ok().flatten() {
        Some(user) => {
            let groups = CString::new(user.name.as_bytes())
                .ok()
                .and_then(|name| nix::unistd::getgrouplist(&name, user.gid).ok())
                .unwrap_or_else(|| vec![user.gid]);
            (user.gid, groups)
        }
        None => (Gid::from_raw(m.gid()), vec![Gid::from_raw(m.gid())]),
    };
    Some((uid, gid, groups))
}

/// Makes `cmd` drop to the owner of `db` when root runs it (see the
/// module's doc).
pub(super) fn run_as_owner(cmd: &mut Command, db: &Path) {
    let Some((uid, gid, groups)) = owner_of(db) else {
        return;
    };
    tracing::info!(
        uid = uid.as_raw(),
        gid = gid.as_raw(),
        db = %db.display(),
        "starting the arbiter as the database file's owner"
    );
    // SAFETY: only system calls between fork and exec (setgroups, setgid,
    // setuid: async-signal-safe); the group list was read before the fork.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setgroups(&groups)?;
            nix::unistd::setgid(gid)?;
            nix::unistd::setuid(uid)?;
            Ok(())
        });
    }
}
