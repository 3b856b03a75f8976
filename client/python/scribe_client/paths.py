"""The path resolver, the same as ``protocol/src/paths.rs``: from a
database path to every file scribe keeps beside it, so that this client
and the arbiter always agree on where the sockets are.

Paths are handled as bytes (``os.fsencode``) because the Rust side hashes
the OS bytes of the path.
"""

import os
import stat
import time
from typing import Optional, Union

__all__ = [
    "MAX_SOCKET_PATH",
    "Paths",
    "absolute",
    "fnv1a64",
    "default_socket",
    "read_marker",
    "describe_marker",
    "lock_pid",
    "lock_held",
    "name_trouble",
    "LOCK_OFFSET",
]

#: The byte of the database file an arbiter holds a write lock on for as
#: long as it lives (``protocol/src/lockfile.rs``).
LOCK_OFFSET = 0x40000300

#: ``sun_path`` is 108 bytes on Linux, including the terminating NUL.
MAX_SOCKET_PATH = 107

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def fnv1a64(data: bytes) -> int:
    """FNV-1a, 64 bits."""
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def absolute(path: PathLike) -> bytes:
    """The absolute form of ``path`` as Rust's ``std::path::absolute``
    makes it on Unix: relative paths are joined to the current directory,
    ``.`` components and repeated slashes are dropped, ``..`` is kept
    (no symlink resolution), exactly two leading slashes are kept, and a
    trailing slash is kept."""
    p = os.fsencode(path)
    if not p:
        raise ValueError("empty database path")
    parts = [c for c in p.split(b"/") if c not in (b"", b".")]
    if p.startswith(b"/"):
        base = b"//" if p.startswith(b"//") and not p.startswith(b"///") else b"/"
        out = base + b"/".join(parts)
    else:
        cwd = os.getcwdb()
        if parts:
            out = cwd + (b"" if cwd.endswith(b"/") else b"/") + b"/".join(parts)
        else:
            out = cwd
    if p.endswith(b"/") and not out.endswith(b"/"):
        out += b"/"
    return out


def canonical(db: bytes) -> bytes:
    """The database path with its directory resolved (symlinks, ``..``)
    when the directory exists, as the Rust resolver does, so every
    spelling of one database derives the same socket name; a symlink to
    the file is followed (as SQLite follows it to name the WAL)."""
    if os.path.islink(db):
        # Made or not yet (SQLite creates the target), the target names it.
        return os.path.realpath(db)
    head, name = os.path.split(db)
    if head and name and os.path.isdir(head):
        return os.path.join(os.path.realpath(head), name)
    return db


def default_socket(db: bytes, kind: str) -> bytes:
    """``<db>.scribe.<kind>``, or ``scribe-<fnv1a64 hex>.<kind>`` under
    ``$XDG_RUNTIME_DIR`` (else ``/tmp``) when that would be too long."""
    beside = db + b".scribe." + kind.encode()
    if len(beside) <= MAX_SOCKET_PATH:
        return beside
    name = b"scribe-%016x." % fnv1a64(db) + kind.encode()
    xdg = os.environb.get(b"XDG_RUNTIME_DIR", b"")
    if xdg:
        candidate = xdg + (b"" if xdg.endswith(b"/") else b"/") + name
        if len(candidate) <= MAX_SOCKET_PATH:
            return candidate
    return b"/tmp/" + name


class Paths:
    """Every path that belongs to one database (as ``str``; the ``*_b``
    attributes hold the bytes)."""

    def __init__(self, db: PathLike) -> None:
        self.db_b = canonical(absolute(db))
        self.http_socket_b = default_socket(self.db_b, "http.sock")
        self.socket_b = default_socket(self.db_b, "sock")
        self.db = os.fsdecode(self.db_b)
        self.http_socket = os.fsdecode(self.http_socket_b)
        self.socket = os.fsdecode(self.socket_b)
        self.lock = self.db + ".scribe.lock"
        self.log = self.db + ".scribe.log"
        self.stop_marker = self.db + ".scribe.stopping"
        self.config = self.db + ".scribe.conf"

    def __repr__(self) -> str:
        return "Paths(db=%r, http_socket=%r)" % (self.db, self.http_socket)


def _now_ms() -> int:
    return int(time.time() * 1000)


def read_marker(path: str) -> Optional[Union[str, int]]:
    """The live stopping marker: ``"hold"``, or the Unix time in ms until
    which auto-start stays off; None when absent, unreadable or expired."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return None
    lines = text.splitlines()
    if not lines or _moved_back(path, lines):
        return None
    line = lines[0].strip()
    if line == "hold":
        return "hold"
    if line.startswith("until="):
        value = line[len("until="):]
        if value.isdigit() and value.isascii():
            until = int(value)
            try:
                # Never later than a day after it was written (as Rust's).
                until = min(until, int(os.stat(path).st_mtime * 1000) + _MAX_GRACE_MS)
            except OSError:
                pass
            if until > _now_ms():
                return until
    return None


_MAX_GRACE_MS = 24 * 3600 * 1000


def _moved_back(path: str, lines: list) -> bool:
    """The marker names the file moved away (``file=DEV:INO``), and that
    file is at the database's path again: it holds nothing back."""
    named = [l[len("file="):].strip() for l in lines if l.startswith("file=")]
    if not named or not path.endswith(".scribe.stopping"):
        return False
    try:
        st = os.stat(path[: -len(".scribe.stopping")])
    except OSError:
        return False
    return "%d:%d" % (st.st_dev, st.st_ino) == named[0]


def describe_marker(marker: Union[str, int]) -> str:
    """Why auto-start is off, worded as the Rust side words it."""
    if marker == "hold":
        return (
            "the arbiter was stopped with `scribe stop --hold`; auto-start is off "
            "until `scribe start`"
        )
    left = max(0, int(marker) - _now_ms()) / 1000.0
    shown = "%.1fs" % left if left < 10 else "%ds" % round(left)
    return (
        "the arbiter was stopped; auto-start resumes in %s (or run `scribe start`)" % shown
    )


def lock_pid(lock_path: str) -> Optional[int]:
    """The pid recorded in the lock file (for people and tests: liveness is
    decided by the arbiter's lock on the database file, not by this pid)."""
    try:
        with open(lock_path, "r", encoding="utf-8", errors="replace") as f:
            for line in f:
                name, sep, value = line.partition("=")
                if sep and name == "pid" and value.strip().isdigit():
                    return int(value.strip())
    except OSError:
        return None
    return None


_probes: dict = {}


def lock_held(db_path: bytes) -> Optional[bool]:
    """Whether some process holds the arbiter's lock on ``db_path``
    (``None``: cannot tell, off Linux say).

    Asked with ``F_OFD_GETLK`` on a descriptor of the database that stays
    open until the process exits: closing any descriptor of that file
    would drop every POSIX lock this process holds on it, the local
    reader's SQLite locks included."""
    try:
        import fcntl
        import struct

        st = os.stat(db_path)
        fd = _probes.get((st.st_dev, st.st_ino))
        if fd is not None:
            # A program that closed every descriptor (a daemon's fork) may
            # have this number on another file now.
            try:
                same = os.path.samestat(os.fstat(fd), st)
            except OSError:
                same = False
            if not same:
                fd = None
        if fd is None:
            fd = os.open(db_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            opened = os.fstat(fd)
            # Filed under the inode it opened, and never closed.
            _probes[(opened.st_dev, opened.st_ino)] = fd
        probe = struct.pack("@hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, LOCK_OFFSET, 1, 0)
        got = fcntl.fcntl(fd, getattr(fcntl, "F_OFD_GETLK", 36), probe)
        return struct.unpack("@hhqqi4x", got)[0] != fcntl.F_UNLCK
    except (OSError, ImportError):
        return None


def name_trouble(path: str) -> Optional[str]:
    """Why the database must not be read through ``path`` because the file
    has more than one name (hard links), if it has: SQLite keeps the WAL
    beside the name, so reads through one name miss the commits in
    another's. Said when an arbiter serves the file under another name,
    or none serves it (none starts on a file with several names: a start
    under the other name after a crash wrote over those commits). None
    for a file with one name, or served under this one. As
    ``names::name_trouble`` in ``protocol/src/names.rs``."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if stat.S_ISDIR(st.st_mode):
        # A directory has several links of its own: not a database.
        return "unable to open database file (%s is a directory)" % path
    links = st.st_nlink
    if links <= 1:
        return None
    paths = Paths(path)
    held = lock_held(paths.db_b)
    if held and _recorded_by_a_live_process(paths.lock):
        return None
    if held:
        return (
            "%s is another name (a hard link) of a database an arbiter serves under its own "
            "name: reads through this name would miss its latest commits (SQLite keeps the WAL "
            "beside the name), and no arbiter answers on this name's socket; use that name" % path
        )
    return (
        "database %s has %d names (hard links): SQLite keeps the WAL beside the name a file is "
        "opened by, so commits made through one name are missed through another and can be "
        "lost; scribe serves a file with one name only. Remove the other links (`find "
        "\"$(stat -c %%m %s)\" -xdev -samefile %s` lists them), keeping the name whose -wal "
        "file exists, if one does" % (path, links, path, path)
    )


def _recorded_by_a_live_process(lock_path: str) -> bool:
    """Whether the lock record at ``lock_path`` was written by a process
    that still runs (one left by a stopped arbiter, or beside the old name
    of a renamed database, is not)."""
    pid = lock_pid(lock_path)
    if not pid:
        return False
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        if os.path.exists("/proc/self/stat"):
            return False
        try:  # no /proc: ask the kernel
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            pass  # another user's process: it runs
        return True
    # The state follows the command name in parentheses; a zombie has
    # exited (where nothing reaps orphans, a stopped arbiter stays one).
    return stat[stat.rfind(b")") + 1 :].lstrip()[:1] not in (b"Z", b"X")
