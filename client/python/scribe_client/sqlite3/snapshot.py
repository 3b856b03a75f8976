"""The snapshot of an ``autocommit=False`` transaction's first reads.

With ``autocommit=False`` sqlite3 keeps a deferred transaction open: the
reads before its first write all see one snapshot of the file, and that
write fails with "database is locked" when another connection committed
since (SQLite cannot move a read transaction forward into a write one),
again on every try until the transaction is rolled back.

Here those reads run on the local connection, in a read transaction held
from the first of them (``hold``). The first write opens a write session
on the arbiter; once it has begun, the arbiter's writer is this
connection's and nothing else commits, so a change of ``PRAGMA
data_version`` since the snapshot was taken (``check``) says that
something committed in between: the session is then rolled back and the
write fails as sqlite3's, so that a read-then-write never overwrites what
it did not see. The version is read on a private connection of its own,
once just before the snapshot and once at the check: on the local
connection itself, a cursor still being read would keep the old snapshot
open and hide the change. (A commit between the two first steps makes a
write fail that sqlite3 would let through: "locked" is the safe side.)
"""

import sqlite3 as _std
from typing import Optional

from .errors import sql_error
from .route import here

__all__ = ["Snapshot"]

LOCKED = "database is locked"
BUSY_SNAPSHOT = 517  # SQLite's code for it: a read transaction cannot become a write one


class Snapshot:
    """The local read transaction an ``autocommit=False`` transaction's
    reads share until its first write."""

    def __init__(self, conn: _std.Connection, uri: str) -> None:
        self.conn = conn
        self.uri = uri  # of the file, read-only
        self.probe: Optional[_std.Connection] = None  # made at the first hold
        # The probe's data_version when the snapshot was taken (None: none held).
        self.version: Optional[int] = None
        # A write of this transaction found it overtaken: every write until
        # the transaction ends fails the same way, as in sqlite3.
        self.overtaken = False

    def hold(self) -> None:
        """Before a read outside a session: the first one takes the snapshot."""
        if self.version is None:
            # The version first: the snapshot starts after it, at the read
            # that follows (the file as it is then).
            version = self._version()
            here(self.conn, "BEGIN")
            self.version = version

    def check(self) -> None:
        """Once the session of the transaction's first write has begun:
        raises ``OperationalError`` ("database is locked") when anything
        was committed after the snapshot was taken, and keeps the snapshot
        for the transaction's reads; else the snapshot ends here (the
        session's reads run on the arbiter)."""
        if self.overtaken:
            raise sql_error(BUSY_SNAPSHOT, LOCKED)
        taken = self.version
        if taken is None:
            return  # nothing read before the write: nothing to overtake
        if self._version() != taken:
            # The snapshot stays: the transaction's reads still see it.
            self.overtaken = True
            raise sql_error(BUSY_SNAPSHOT, LOCKED)
        self.release()

    def release(self) -> None:
        """Ends the local read transaction, if one is held."""
        if self.version is not None:
            self.version = None
            _std.Connection.commit(self.conn)

    def end(self) -> None:
        """The transaction ended (commit, rollback, autocommit on)."""
        self.release()
        self.overtaken = False

    def close(self) -> None:
        if self.probe is not None:
            self.probe.close()
            self.probe = None

    def private(self) -> _std.Connection:
        """The probe: a read-only connection of this one's own, which never
        keeps a transaction open (``fresh`` reads on it too)."""
        if self.probe is None:
            self.probe = _std.connect(self.uri, uri=True, isolation_level=None, check_same_thread=False)
        return self.probe

    def _version(self) -> int:
        """The probe's ``PRAGMA data_version``: it changes when another
        connection commits."""
        return int(self.private().execute("PRAGMA data_version").fetchone()[0])
