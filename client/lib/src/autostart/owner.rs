//! An arbiter that root starts for a database another user owns runs as
//! that user: otherwise its sockets and files would be root's, and once
//! it stopped or died the owner could not start one again (SQLite gives
//! its `-wal` and `-shm` files the database file's owner for the same
//! reason); and it would run that user's `.scribe.conf` (extensions
//! included) as root. An administrator's one `sudo scribe exec` then
//! leaves the database as it found it.

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::errno::Errno;
use nix::unistd::{Gid, Uid, User};

/// Whom root starts the arbiter of `db` as.
struct Owner {
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    user: Option<User>,
}

/// The owner of `db` (of its directory while it is not made yet), with
/// that user's groups; `None` when this process is not root, the owner
/// is root, or the owner could not write the directory (a database copied
/// into root's directory, say: the arbiter stays root, as before).
fn owner_of(db: &Path) -> Option<Owner> {
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
    let mode = dir_meta.mode();
    let writes = (dir_meta.uid() == owner_uid && mode & 0o200 != 0)
        || (groups.contains(&Gid::from_raw(dir_meta.gid())) && mode & 0o020 != 0)
        || mode & 0o002 != 0;
    writes.then_some(Owner {
        uid,
        gid,
        groups,
        user,
    })
}

/// Makes `cmd` drop to the owner of `db` when root runs it (see the
/// module's doc), with an environment of its own: root's is not the
/// owner's to read (in `/proc/PID/environ`).
pub(super) fn run_as_owner(cmd: &mut Command, db: &Path) {
    let Some(owner) = owner_of(db) else {
        return;
    };
    tracing::info!(
        uid = owner.uid.as_raw(),
        gid = owner.gid.as_raw(),
        db = %db.display(),
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
    let Owner {
        uid, gid, groups, ..
    } = owner;
    // SAFETY: only system calls between fork and exec (setgroups, setgid,
    // setuid: async-signal-safe); the group list was read before the fork.
    unsafe {
        cmd.pre_exec(move || {
            match nix::unistd::setgroups(&groups) {
                // Root without CAP_SETGID (a container that dropped it):
                // nothing changed yet, so it runs as root, as it did.
                Err(Errno::EPERM) => return Ok(()),
                other => other?,
            }
            nix::unistd::setgid(gid)?;
            nix::unistd::setuid(uid)?;
            Ok(())
        });
    }
}
