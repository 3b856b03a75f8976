"""``Cursor`` of the drop-in, and how it serves the rows the arbiter answers.

A cursor is a real ``sqlite3.Cursor`` of the local read-only connection:
reads outside a transaction run there, natively. Results that came from
the arbiter (writes, and everything inside a transaction) are held by the
cursor and served by the same methods.
"""

import atexit
import operator
import sqlite3 as _std
import threading
from typing import Optional

from .convert import plan
from .convert import row as convert_row

__all__ = ["Cursor"]


class Cursor(_std.Cursor):
    """A cursor that routes each statement (see ``Connection``). While it
    holds rows read locally it is the standard cursor, method for method;
    while it holds an answer from the arbiter its class is switched to a
    subclass that serves those rows."""

    _lastrowid: Optional[int] = None
    _closed = False
    # A statement of the local connection may still be stepping (a read
    # not read to its end): it keeps that connection's read transaction,
    # and so its view of the file, open.
    _here = False

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
        if self._here:
            # sqlite3 resets a cursor's statement when it runs the next:
            # a read left half done would otherwise hold the local
            # connection on the file as it was (later reads stale, and the
            # tables this connection creates unknown to it). An empty text
            # resets it without running anything, in every version.
            self._here = False
            _std.Cursor.execute(self, "")
        self.__class__ = _answering(type(self))
        self._remote(columns, rows, rowcount, decltypes)


# fetchmany() without a size: the cursor's arraysize.
_ARRAYSIZE = object()


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
        self._described = None
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
        if isinstance(factory, type) and issubclass(factory, _std.Row):
            # sqlite3.Row (or a subclass) takes its names from the C side
            # of the cursor it is given, which an answer does not set: a
            # cursor that read nothing under the same names gives them.
            if self._described is None:
                self._described = _describing(self._names)
            return factory(self._described, values)
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

    def fetchmany(self, size=_ARRAYSIZE):
        self._check()
        # As sqlite3: an int (None is refused), and below 1 every row.
        n = self.arraysize if size is _ARRAYSIZE else operator.index(size)
        out = []
        while self._rows:
            out.append(self._made(self._rows.pop()))
            if len(out) == n:
                break
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
        if self.connection._closed:
            raise _std.ProgrammingError("Cannot operate on a closed database.")

    def close(self) -> None:
        self._rows = None
        _std.Cursor.close(self)
        self._closed = True


_describer: Optional[_std.Connection] = None
_describer_lock = threading.Lock()


def _describing(names) -> _std.Cursor:
    """A cursor of a private in-memory connection whose description has
    ``names``: sqlite3.Row made with it is the standard row, keys, case
    rules, equality and hash alike."""
    global _describer
    columns = ", ".join('NULL AS "%s"' % str(n).replace('"', '""') for n in names)
    with _describer_lock:
        if _describer is not None:
            try:
                cur = _describer.cursor()
            except _std.ProgrammingError:
                # Closed at exit, and a later exit handler reads rows.
                _describer = None
        if _describer is None:
            _describer = _std.connect(":memory:", check_same_thread=False)
            atexit.register(_describer.close)  # closed, as Python 3.13 asks
            cur = _describer.cursor()
        cur.execute("SELECT %s WHERE 0" % columns)
    return cur


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
