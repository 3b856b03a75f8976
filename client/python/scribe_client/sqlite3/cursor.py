"""``Cursor`` of the drop-in, and ``AnswerRow`` for the rows the arbiter answers.

A cursor is a real ``sqlite3.Cursor`` of the local read-only connection:
reads outside a transaction run there, natively. Results that came from
the arbiter (writes, and everything inside a transaction) are held by the
cursor and served by the same methods.
"""

import sqlite3 as _std
from typing import List, Optional

from .convert import plan
from .convert import row as convert_row

__all__ = ["AnswerRow", "Cursor"]


class AnswerRow(_std.Row):
    """``sqlite3.Row`` for a row the arbiter answered (the standard Row
    takes its names from the standard cursor's own description, which an
    answer does not set): index by position or by column name
    (case-insensitive), ``keys()``, equality and hashing by names and
    values. Rows read locally are the standard ``sqlite3.Row`` itself."""

    @classmethod
    def make(cls, cursor, values, names):
        self = cls(cursor, values)
        self._names = names
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
        # As sqlite3.Row hashes: its description's hash and its values'.
        desc = tuple((n, None, None, None, None, None, None) for n in self._names)
        return hash(desc) ^ hash(tuple(self))


class Cursor(_std.Cursor):
    """A cursor that routes each statement (see ``Connection``). While it
    holds rows read locally it is the standard cursor, method for method;
    while it holds an answer from the arbiter its class is switched to a
    subclass that serves those rows."""

    _lastrowid: Optional[int] = None
    _closed = False

    def execute(self, sql, parameters=()):
        if self._closed:
            _closed_cursor()
        return self.connection._run(self, sql, parameters)

    def executemany(self, sql, seq_of_parameters):
        if self._closed:
            _closed_cursor()
        return self.connection._run_many(self, sql, seq_of_parameters)

    def executescript(self, sql_script):
        if self._closed:
            _closed_cursor()
        return self.connection._script(self, sql_script)

    def close(self) -> None:
        # Checked here before a statement is routed: a write never reaches
        # the standard cursor, whose own check would refuse it.
        _std.Cursor.close(self)
        self._closed = True

    @property
    def lastrowid(self):
        return self._lastrowid

    # -------------------------------------------------- what routing sets

    def _local(self) -> None:
        """The next rows come from the local connection."""

    def _remote(self, columns, rows, rowcount: int, decltypes=None) -> None:
        """The next rows (and rowcount) are the arbiter's answer."""
        self.__class__ = _answering(type(self))
        self._remote(columns, rows, rowcount, decltypes)


class _Answering:
    """Serves an answer from the arbiter through the cursor's methods."""

    _home: type = Cursor

    def _local(self) -> None:
        self._rows = None
        self.__class__ = self._home

    def _remote(self, columns, rows, rowcount: int, decltypes=None) -> None:
        detect = getattr(self.connection, "_detect_types", 0)
        convs = None
        if columns and detect:
            columns, convs = plan(columns, decltypes, detect)
        self._desc = tuple((c, None, None, None, None, None, None) for c in columns) if columns else None
        self._names = tuple(columns or ())
        self._convs = convs
        rows.reverse()  # served from the end
        self._rows = rows
        self._count = rowcount

    def _made(self, values: tuple):
        """A row as sqlite3 makes it when it is fetched: converters,
        text_factory and row_factory as they are set now."""
        text = self.connection.text_factory
        if self._convs is not None or text is not str:
            values = convert_row(values, self._convs, text)
        factory = self.row_factory
        if factory is None:
            return values
        if factory is _std.Row:
            return AnswerRow.make(self, values, self._names)
        return factory(self, values)

    @property
    def description(self):
        return self._desc

    @property
    def rowcount(self):
        return self._count

    def fetchone(self):
        self._check()
        rows = self._rows
        return self._made(rows.pop()) if rows else None

    def fetchmany(self, size=None):
        self._check()
        n = self.arraysize if size is None else size
        out = []
        while self._rows and len(out) < n:
            out.append(self._made(self._rows.pop()))
        return out

    def fetchall(self):
        self._check()
        rows = self._rows
        out = []
        while rows:
            out.append(self._made(rows.pop()))
        return out

    def __next__(self):
        self._check()
        if self._rows:
            return self._made(self._rows.pop())
        raise StopIteration

    def _check(self) -> None:
        if self._rows is None:
            raise _std.ProgrammingError("Cannot operate on a closed cursor.")

    def close(self) -> None:
        self._rows = None
        _std.Cursor.close(self)
        self._closed = True


def _closed_cursor() -> None:
    raise _std.ProgrammingError("Cannot operate on a closed cursor.")


_classes = {}


def _answering(home: type) -> type:
    """The answering class for cursors of class ``home``."""
    cls = _classes.get(home)
    if cls is None:
        cls = type(home.__name__, (_Answering, home), {"_home": home, "__module__": home.__module__})
        _classes[home] = cls
    return cls
