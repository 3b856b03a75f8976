"""``last_insert_rowid()``, ``changes()`` and ``total_changes()`` in reads.

The local connection never writes, so SQLite's own functions would say 0
there after any write this connection made through the arbiter. These
stand in for them on the local connection (an application-defined
function overrides a built-in one of the same name and arity), with what
the connection counted from the arbiter's answers: the rowid of its last
INSERT, the rows its last INSERT, UPDATE or DELETE changed, and all the
rows it changed since it opened. A write that calls them runs on the
arbiter, with SQLite's own."""

import sqlite3 as _std
import weakref

__all__ = ["install"]


def install(conn: _std.Connection) -> None:
    """Registers the three on ``conn`` (a weak reference: the connection
    holds the functions, they must not hold it)."""
    me = weakref.ref(conn)

    def reads(attribute: str):
        def value() -> int:
            c = me()
            return getattr(c, attribute) if c is not None else 0

        return value

    for name, attribute in (
        ("last_insert_rowid", "_last_rowid"),
        ("changes", "_last_changes"),
        ("total_changes", "_changes"),
    ):
        _std.Connection.create_function(conn, name, 0, reads(attribute))
