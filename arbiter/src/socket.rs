//! Binds the RPC socket so that it appears only when ready and never with
//! a wider mode than intended.
//!
//! The listener is bound under a temporary name, given its mode, then
//! renamed over the final path; the rename also replaces a stale socket
//! left by a killed arbiter (only the lock holder ever gets here).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tokio::net::UnixListener;

use crate::error::Error;

/// Mode of the socket file: owner only.
pub const SOCKET_MODE: u32 = 0o600;
/// Mode of the socket file with `--socket-group`: owner and group.
pub const GROUP_SOCKET_MODE: u32 = 0o660;

/// Binds `path` with [`SOCKET_MODE`], or [`GROUP_SOCKET_MODE`] and owned by
/// `group` when one is given.
///
/// # Errors
///
/// [`Error::Bind`] when the socket cannot be created or moved into place,
/// or the group does not exist.
pub fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener, Error> {
    let bind_err = |source| Error::Bind {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let gid = match group {
        None => None,
        Some(name) => Some(
            nix::unistd::Group::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| bind_err(std::io::Error::other(format!("no group named {name:?}"))))?
                .gid,
        ),
    };
    let listener = UnixListener::bind(&tmp).map_err(bind_err)?;
    let mode = if gid.is_some() {
        GROUP_SOCKET_MODE
    } else {
        SOCKET_MODE
    };
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .and_then(|()| nix::unistd::chown(&tmp, None, gid).map_err(std::io::Error::from))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(bind_err(e));
    }
    Ok(listener)
}
