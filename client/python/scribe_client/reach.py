"""Which socket reaches the arbiter, and who may answer there (as
``protocol/src/reach.rs``).

A socket beside the database can only be made by someone who may write its
directory. The fallback name under ``$XDG_RUNTIME_DIR`` or ``/tmp`` (for a
path too long for a socket) is one any local user can compute and take
first: a client would send its SQL there and believe the answers. So
there only the process holding the database's lock (as its lock record
names it) may answer (``SO_PEERCRED``), and the record's socket is the
one followed: an arbiter that finds the name taken binds one of its own
beside it."""

import os
import socket
import struct
from typing import Optional, Tuple

from .errors import Unavailable
from .paths import Paths, lock_held

__all__ = ["connect_checked", "NotTheArbiter"]

_ANYONE = "anyone"
_NOBODY = "nobody"


class NotTheArbiter(ConnectionRefusedError):
    """A process listens on the fallback name while no arbiter holds the
    database: as good as nobody answering (one is started, and binds a
    name of its own)."""


def _record(lock_path: str) -> dict:
    out: dict = {}
    try:
        with open(lock_path, "r", encoding="utf-8", errors="replace") as f:
            for line in f:
                name, sep, value = line.rstrip("\n").partition("=")
                if sep:
                    out[name] = value.strip()
    except OSError:
        pass
    return out


def reach(paths: Paths, which: str) -> Tuple[bytes, object]:
    """``(path, who)`` for socket ``which`` (``"socket"`` or
    ``"http_socket"``): who is ``_ANYONE``, ``_NOBODY`` or a pid."""
    default = paths.socket_b if which == "socket" else paths.http_socket_b
    if os.path.dirname(default) == os.path.dirname(paths.db_b):
        return default, _ANYONE
    held = lock_held(paths.db_b)
    if held is None and not os.path.exists(paths.db_b):
        held = False  # no database yet: no arbiter holds it
    if held is None:
        return default, _ANYONE  # cannot tell: as before
    if not held:
        return default, _NOBODY
    record = _record(paths.lock)
    path = os.fsencode(record[which]) if record.get(which) else default
    pid = record.get("pid", "")
    return path, (int(pid) if pid.isdigit() else _ANYONE)


def _peer_pid(sock: socket.socket) -> Optional[int]:
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", raw)[0]
    except (OSError, AttributeError):
        return None


def connect_checked(sock: socket.socket, paths: Paths, which: str) -> None:
    """``sock.connect`` to the arbiter's socket ``which``; raises
    ``NotTheArbiter`` (a ``ConnectionRefusedError``) when another process
    answers there while no arbiter holds the database, ``Unavailable``
    when one does hold it but another answers."""
    path, who = reach(paths, which)
    sock.connect(path)
    if who is _ANYONE:
        return
    pid = _peer_pid(sock)
    if who is not _NOBODY and pid == who:
        return
    whom = "pid %d" % pid if pid is not None else "a process"
    where = os.fsdecode(path)
    if who is _NOBODY:
        raise NotTheArbiter(
            "%s answers on %s, but no arbiter holds %s: another process has taken the socket's "
            "name; nothing was sent to it" % (whom, where, paths.db)
        )
    raise Unavailable(
        "%s answers on %s, but the arbiter of %s is pid %d: another process has taken the "
        "socket's name; nothing was sent to it" % (whom, where, paths.db, who)
    )
