"""A drop-in for the standard ``sqlite3`` module: change one import,

    import scribe_client.sqlite3 as sqlite3

and the program's writes go through scribe's arbiter, while its reads stay
on the file. ``connect``, ``Connection``, ``Cursor``, ``Row`` and the
context manager behave as the standard module's; the exceptions *are* the
standard module's (``except sqlite3.IntegrityError`` keeps working), and
scribe's own categories are subclasses of them that carry ``category``
and ``retry_after_ms``.

``sqlite_version`` is the version of the SQLite this process reads with
(the standard module's): every statement is compiled here first, to
route it, and reads run here. The arbiter writes with its own bundled
SQLite, usually newer: ``Connection.arbiter_sqlite_version()`` says which.
"""

from sqlite3 import *  # noqa: F401,F403  (constants, adapters, exceptions)
import sqlite3 as _std
import sys as _sys

from .connection import Connection
from .cursor import Cursor
from .errors import Expired, Overloaded, ProtocolError, Refused, ShuttingDown, Timeout, Unavailable
from .pragmas import ScribeWarning

# The standard module's own Row, for rows read here and rows the arbiter
# answered alike (see ``cursor._describing``).
Row = _std.Row

# The exception hierarchy is the standard module's own.
Warning = _std.Warning  # noqa: A001
Error = _std.Error
InterfaceError = _std.InterfaceError
DatabaseError = _std.DatabaseError
DataError = _std.DataError
OperationalError = _std.OperationalError
IntegrityError = _std.IntegrityError
InternalError = _std.InternalError
ProgrammingError = _std.ProgrammingError
NotSupportedError = _std.NotSupportedError

# `from sqlite3 import dbapi2` (Django's backend imports it so) names the
# drop-in too, not the standard module's own that `import *` brought in.
dbapi2 = _sys.modules[__name__]

apilevel = "2.0"
paramstyle = "qmark"
threadsafety = _std.threadsafety
sqlite_version = _std.sqlite_version
sqlite_version_info = _std.sqlite_version_info


def connect(database, timeout=5.0, detect_types=0, isolation_level="", check_same_thread=True,
            factory=Connection, cached_statements=128, uri=False, **kwargs):
    """Opens ``database`` (a file; the arbiter is started when none runs).
    ``timeout`` is how long a write (or a transaction's begin) waits for
    the arbiter's writer, behind another connection's transaction say,
    before it fails with ``database is locked`` (and a read for a lock),
    as the busy timeout is for sqlite3. ``factory`` may be a
    subclass of this module's ``Connection``."""
    if not (isinstance(factory, type) and issubclass(factory, Connection)):
        raise _std.NotSupportedError(
            "factory must be a subclass of scribe_client.sqlite3.Connection (subclass "
            "sqlite3.Connection from this module)"
        )
    return factory(database, timeout=timeout, detect_types=detect_types,
                   isolation_level=isolation_level, check_same_thread=check_same_thread,
                   cached_statements=cached_statements, uri=uri, **kwargs)


