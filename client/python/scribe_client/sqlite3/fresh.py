"""Reads that see this connection's own writes while a cursor of its local
connection is still being read.

In sqlite3 a connection's writes are its own: a read after them sees them,
whatever cursor is still half read. Here the writes go through the
arbiter, and a read runs on the local connection, whose read transaction a
half-read cursor keeps open on the file as it was: a read after a write
would not see it. So after a write, the first local read asks the local
connection which commit it sees (``_scribe_seq``); while that is older
than this connection's last commit, reads run on a private connection of
their own, whose rows the cursor then serves."""

import sqlite3 as _std
from typing import Any, Callable

from .route import here

__all__ = ["Fresh"]


class Fresh:
    def __init__(self, conn: _std.Connection, private: Callable[[], _std.Connection]) -> None:
        self.conn = conn
        self.private = private  # the private connection, made when first asked
        self.seen = 0  # the last own commit the local connection was found to see

    def behind(self, wrote: int) -> bool:
        """True when the local connection cannot see commit ``wrote`` (this
        connection's last) yet: a cursor still being read holds it back."""
        try:
            rows = here(self.conn, "SELECT seq FROM _scribe_seq")
        except _std.Error:
            return False  # no view to ask (an old file): read as before
        if rows and rows[0][0] is not None and int(rows[0][0]) >= wrote:
            self.seen = wrote
            return False
        return True

    def read(self, cur: Any, sql: str, params: Any, lastrowid: int) -> Any:
        """Runs the read on the private connection; ``cur`` serves its rows
        (and ``lastrowid``, the connection's, as after any read)."""
        other = self.private().cursor()
        try:
            other.execute(sql, params)
            rows = other.fetchall()
            columns = [d[0] for d in other.description] if other.description else []
        finally:
            other.close()
        cur._remote(columns, rows, -1)
        cur._lastrowid = lastrowid
        return cur
