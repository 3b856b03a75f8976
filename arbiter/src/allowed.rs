//! Who may connect: by uid (`--allow-uid`) or by group (`--allow-group`),
//! besides the arbiter's own uid and root.
//!
//! A peer's groups are those it had when it connected: its primary gid
//! from `SO_PEERCRED` and, on Linux, its supplementary groups from
//! `SO_PEERGROUPS`, both recorded by the kernel at `connect`. Reading
//! `/proc/PID/status` instead would ask about whatever process holds that
//! pid by then.

use std::os::fd::AsRawFd;

use tokio::net::UnixStream;

/// The uids and gids let in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowed {
    /// Allowed uids (the arbiter's own among them).
    pub uids: Vec<u32>,
    /// Groups whose members are allowed, whatever their uid.
    pub gids: Vec<u32>,
}

impl Allowed {
    /// Whether the peer of `stream`, of `uid`, may connect.
    pub fn admits(&self, stream: &UnixStream, uid: u32, gid: u32) -> bool {
        if uid == 0 || self.uids.contains(&uid) {
            return true;
        }
        if self.gids.is_empty() {
            return false;
        }
        self.gids.contains(&gid) || peer_groups(stream).iter().any(|g| self.gids.contains(g))
    }
}

/// Resolves `--allow-group`'s value: a group name, or a number taken as
/// a gid.
///
/// # Errors
///
/// A name no group has, said in words.
pub fn resolve_group(name: &str) -> Result<u32, String> {
    if let Ok(gid) = name.trim().parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(name.trim()) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!("--allow-group {name:?}: no group has that name")),
        Err(e) => Err(format!(
            "--allow-group {name:?}: cannot look the group up: {e}"
        )),
    }
}

/// The supplementary groups the peer of `stream` had at `connect`.
fn peer_groups(stream: &UnixStream) -> Vec<u32> {
    scribe_protocol::reach::peer_groups(stream.as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_peer_is_let_in_by_its_uid_or_by_any_of_its_groups() {
        let (a, _b) = UnixStream::pair().unwrap();
        let cred = a.peer_cred().unwrap();
        let (uid, gid) = (cred.uid(), cred.gid());
        let mine = peer_groups(&a);
        let own = nix::unistd::getgroups().unwrap();
        let own: Vec<u32> = own.iter().map(|g| g.as_raw()).collect();
        assert_eq!(mine, own, "SO_PEERGROUPS reads this process's groups");
        let none = Allowed::default();
        assert_eq!(none.admits(&a, uid, gid), uid == 0);
        let by_uid = Allowed {
            uids: vec![uid],
            gids: vec![],
        };
        assert!(by_uid.admits(&a, uid, gid));
        let by_primary = Allowed {
            uids: vec![],
            gids: vec![gid],
        };
        assert!(by_primary.admits(&a, uid, gid));
        let stranger = uid.wrapping_add(1).max(1);
        let absent_gid = (1..u32::MAX - 1)
            .find(|g| *g != gid && !own.contains(g))
            .unwrap();
        let other = Allowed {
            uids: vec![],
            gids: vec![absent_gid],
        };
        assert!(!other.admits(&a, stranger, gid), "no group of the peer's");
        if let Some(&sup) = own.iter().find(|g| **g != gid) {
            let by_supplementary = Allowed {
                uids: vec![],
                gids: vec![sup],
            };
            assert!(by_supplementary.admits(&a, stranger, gid));
        }
    }

    #[test]
    fn groups_are_named_or_numbered() {
        assert_eq!(resolve_group("4242"), Ok(4242));
        assert_eq!(resolve_group("root"), Ok(0));
        let e = resolve_group("no-such-group-here").unwrap_err();
        assert!(e.contains("no group has that name"), "{e}");
    }
}
