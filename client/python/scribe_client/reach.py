"""Which socket reaches the arbiter, and who may answer there (as
``protocol/src/reach.rs``).

A socket's name can be taken by another local user before the arbiter
binds it: the hashed fallback under ``$XDG_RUNTIME_DIR`` or ``/tmp`` (for a
path too long for a socket), or a name beside a database in a shared sticky
directory. A client would send its SQL there and believe the answers. So
only a process of a user who may write the database file answers
(``SO_PEERCRED``): root, its owner, a member of its group when the group
may write it, anyone when everyone may, or this process's own user; and,
while no process holds the database's lock, nobody. The lock record's
socket is followed when a user who may write the database wrote it (an
arbiter that finds its name taken binds one of its own beside it).
The arbiter's hello then says which file it serves, and a client whose
database is another file (a socket given for another database) sends
nothing more (``check_served``)."""

import os
import pwd
import socket
import struct
import sys
from typing import Optional, Tuple

from .errors import ProtocolError, Refused, Unavailable
from .paths import Paths, lock_held

__all__ = ["check_served", "connect_checked", "NotTheArbiter", "may_write"]

_WRITER = "writer"
_NOBODY = "nobody"


class NotTheArbiter(ConnectionRefusedError):
    """A process listens on the name while no arbiter holds the database:
    as good as nobody answering (one is started, and binds a name of its
    own if it must)."""


def may_write(db: bytes, uid: int, gid: Optional[int], groups: Tuple[int, ...] = ()) -> bool:
    """Whether user ``uid`` (primary group ``gid`` and run-time ``groups``
    when known) may write the database file, as far as this process can
    tell."""
    if uid == 0 or uid == os.geteuid():
        return True
    try:
        st = os.stat(db)
    except OSError:
        return False
    if uid == st.st_uid or st.st_mode & 0o002:
        return True
    return bool(st.st_mode & 0o020) and _in_group(uid, gid, groups, st.st_gid)


def _in_group(uid: int, gid: Optional[int], groups: Tuple[int, ...], group: int) -> bool:
    if gid == group or group in groups:
        return True
    try:
        user = pwd.getpwuid(uid)
        return group in os.getgrouplist(user.pw_name, user.pw_gid)
    except (KeyError, OSError):
        return False


def _record(paths: Paths) -> dict:
    """The lock record, when a user who may write the database wrote it."""
    out: dict = {}
    try:
        # Never through a link: its target's owner is not who made it.
        fd = os.open(paths.lock, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
        with open(fd, "r", encoding="utf-8", errors="replace") as f:
            if not may_write(paths.db_b, os.fstat(f.fileno()).st_uid, None):
                return out
            for line in f:
                name, sep, value = line.rstrip("\n").partition("=")
                if sep:
                    out[name] = value.strip()
    except OSError:
        pass
    return out


def reach(paths: Paths, which: str) -> Tuple[bytes, str]:
    """``(path, who)`` for socket ``which`` (``"socket"`` or
    ``"http_socket"``): who is ``_WRITER`` or ``_NOBODY``."""
    default = paths.socket_b if which == "socket" else paths.http_socket_b
    held = lock_held(paths.db_b)
    if held is None and not os.path.exists(paths.db_b):
        held = False  # no database yet: no arbiter holds it
    if held is False:
        return default, _NOBODY
    recorded = _record(paths).get(which)
    return (os.fsencode(recorded) if recorded else default), _WRITER


# Linux's SO_PEERGROUPS (Python does not name it); elsewhere none.
_SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59) if sys.platform.startswith("linux") else None


def _peer(sock: socket.socket) -> Optional[Tuple[int, int, Tuple[int, ...]]]:
    """(uid, gid, run-time groups) of the process that answers."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _, uid, gid = struct.unpack("3i", raw)
    except (OSError, AttributeError):
        return None
    groups: Tuple[int, ...] = ()
    if _SO_PEERGROUPS is not None:
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, _SO_PEERGROUPS, 4 * 256)
            groups = struct.unpack("%dI" % (len(raw) // 4), raw)
        except OSError:
            pass  # more than 256: the system's lists decide
    return uid, gid, groups


def connect_checked(sock: socket.socket, paths: Paths, which: str) -> None:
    """``sock.connect`` to the arbiter's socket ``which``; raises
    ``NotTheArbiter`` (a ``ConnectionRefusedError``) when a process answers
    there while no arbiter holds the database, ``Unavailable`` when one of
    a user who may not write the database answers."""
    path, who = reach(paths, which)
    if os.path.islink(path):
        # scribe never makes one; one another user planted could lead to
        # an arbiter of this user's serving another database.
        if who == _NOBODY:
            raise NotTheArbiter("%s is a symbolic link, which scribe never makes" % os.fsdecode(path))
        raise Unavailable(
            "%s is a symbolic link, which scribe never makes (another user may have planted it): "
            "nothing was sent to it" % os.fsdecode(path)
        )
    sock.connect(path)
    if who == _WRITER and not hasattr(socket, "SO_PEERCRED"):
        return  # this platform cannot say who answers: as before
    peer = _peer(sock)
    if who == _WRITER and peer is not None and may_write(paths.db_b, *peer):
        return
    whom = "uid %d" % peer[0] if peer is not None else "a process"
    where = os.fsdecode(path)
    taken = "another user has taken the socket's name; nothing was sent to it"
    if who == _NOBODY:
        raise NotTheArbiter("%s answers on %s, but no arbiter holds %s: %s" % (whom, where, paths.db, taken))
    raise Unavailable(
        "%s answers on %s, and may not write %s, so it is not its arbiter: %s" % (whom, where, paths.db, taken)
    )


def check_served(hello: dict, paths: Paths) -> None:
    """Raises unless the arbiter that said ``hello`` serves ``paths.db``
    (the same file: device and inode), as the Rust client checks it:
    ``Refused`` for another database's arbiter (a socket meant for another
    one), ``Unavailable`` for one serving the file a move or a restore
    replaced (it stops once it notices)."""
    served = hello.get("database") if isinstance(hello, dict) else None
    if not isinstance(served, dict):
        raise ProtocolError("the arbiter's hello does not say which database it serves")

    def whose() -> str:
        # Named by the socket it answered on (a recorded one, maybe).
        return "the arbiter answering on %s (pid %s) serves %s" % (
            os.fsdecode(reach(paths, "socket")[0]),
            hello.get("pid"),
            served.get("path"),
        )

    try:
        st = os.stat(paths.db_b)
    except PermissionError:
        return  # may not look into its directory (it only writes): cannot tell
    except FileNotFoundError as e:
        # Moved away or deleted this moment: a retry finds how things stand.
        raise Unavailable("%s, and %s is not there now (%s)" % (whose(), paths.db, e.strerror or e)) from None
    except OSError as e:
        raise Refused("%s, and %s cannot be looked at (%s)" % (whose(), paths.db, e.strerror or e)) from None
    if (st.st_dev, st.st_ino) == (served.get("dev"), served.get("ino")):
        return
    if served.get("path") == paths.db:
        # A move or a restore replaced the file: it stops once it notices.
        raise Unavailable(
            "%s as it was before the file there was moved or replaced; it stops once it notices, "
            "and the next call starts one on the file there now" % whose()
        )
    raise Refused("%s, not %s; check the socket given (or SCRIBE_SOCKET), or name that database" % (whose(), paths.db))
