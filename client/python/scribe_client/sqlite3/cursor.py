"""``Cursor`` and ``Row`` of the drop-in.

A cursor is a real ``sqlite3.Cursor`` of the local read-only connection:
reads outside a transaction run there, natively. Results that came from
the arbiter (writes, and everything inside a transaction) are held by the
cursor and served by the same methods.
"""

import sqlite3 as _std
from typing import Any, List, Optional

__all__ = ["Cursor", "Row"]


class Row(_std.Row):
    """``sqlite3.Row`` for rows from either path: index by position or by
    column name (case-insensitive), ``keys()``, equality and hashing by
    names and values. It is a subclass of the standard ``sqlite3.Row``."""

    def __new__(cls, cursor, values):
        self = super().__new__(cls, cursor, values)
        desc = cursor.description
        self._names = tuple(d[0] for d in desc) if desc else ()
        return self

    def keys(self) -> List[str]:
        return list(self._names)

    def __getitem__(self, key):
        if isinstance(key, str):
            want = key.lower()
            for i, name in enumerate(self._names):
                if name.lower() == want:
                    return super().__getitem__(i)
            raise IndexError("No item with that key")
        return super().__getitem__(key)

    def __eq__(self, other):
        if not isinstance(other, _std.Row):
            return NotImplemented
        return self.keys() == list(other.keys()) and tuple(self) == tuple(other)

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self):
        return hash((self._names, tuple(self)))


_NATIVE = object()


class Cursor(_std.Cursor):
    """A cursor that routes each statement (see ``Connection``)."""

    def __init__(self, connection) -> None:
        super().__init__(connection)
        self._rows: Optional[list] = None  # results from the arbiter
        self._desc: Any = None
        self._count = -1
        self._lastrowid: Optional[int] = None

    # ---------------------------------------------------------- statements

    def execute(self, sql, parameters=()):
        return self.connection._run(self, sql, parameters)

    def executemany(self, sql, seq_of_parameters):
        return self.connection._run_many(self, sql, seq_of_parameters)

    def executescript(self, sql_script):
        return self.connection._script(self, sql_script)

    # -------------------------------------------------- what routing sets

    def _local(self) -> None:
        self._rows = None
        self._desc = None

    def _remote(self, columns, rows, rowcount: int) -> None:
        self._desc = tuple((c, None, None, None, None, None, None) for c in columns) if columns else None
        factory = self.row_factory
        if factory is _std.Row:
            factory = Row
        if factory is not None:
            rows = [factory(self, r) for r in rows]
        self._rows = rows
        self._rows.reverse()  # served from the end
        self._count = rowcount

    # ------------------------------------------------------------ results

    @property
    def description(self):
        if self._rows is None:
            return _std.Cursor.description.__get__(self)
        return self._desc

    @property
    def rowcount(self):
        if self._rows is None:
            return _std.Cursor.rowcount.__get__(self)
        return self._count

    @property
    def lastrowid(self):
        return self._lastrowid

    def fetchone(self):
        rows = self._rows
        if rows is None:
            return _std.Cursor.fetchone(self)
        return rows.pop() if rows else None

    def fetchmany(self, size=None):
        if self._rows is None:
            return _std.Cursor.fetchmany(self, self.arraysize if size is None else size)
        n = self.arraysize if size is None else size
        out = []
        while self._rows and len(out) < n:
            out.append(self._rows.pop())
        return out

    def fetchall(self):
        rows = self._rows
        if rows is None:
            return _std.Cursor.fetchall(self)
        out = rows[::-1]
        rows.clear()
        return out

    def __next__(self):
        rows = self._rows
        if rows is None:
            return _std.Cursor.__next__(self)
        if rows:
            return rows.pop()
        raise StopIteration

    def close(self) -> None:
        self._rows = None
        super().close()
