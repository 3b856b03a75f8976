"""Errors of the drop-in: the standard library's own classes, so that
``except sqlite3.IntegrityError`` keeps working, and for scribe's own
categories subclasses that carry the category and the retry hint."""

import re
import sqlite3 as _std
import sys
from typing import Any, Optional

from .. import errors as _scribe

__all__ = [
    "ScribeMixin",
    "Unavailable",
    "Timeout",
    "Overloaded",
    "ShuttingDown",
    "Expired",
    "Refused",
    "ProtocolError",
    "translate",
]


class ScribeMixin:
    """What every scribe-specific error carries: ``category`` (the
    arbiter's category name), ``retry_after_ms`` (its hint, when it gave
    one) and ``retryable`` (whether trying again later can succeed)."""

    category = "error"
    retryable = False
    retry_after_ms: Optional[int] = None


def _make(name: str, base: type, category: str, retryable: bool, doc: str) -> type:
    return type(name, (ScribeMixin, base), {"category": category, "retryable": retryable, "__doc__": doc})


Unavailable = _make("Unavailable", _std.OperationalError, "unavailable", True, "No arbiter answered and none could be started.")
Timeout = _make("Timeout", _std.OperationalError, "timeout", True, "A deadline passed; a write may or may not have committed.")
Overloaded = _make("Overloaded", _std.OperationalError, "overloaded", True, "The arbiter's queue is full; retry after retry_after_ms.")
ShuttingDown = _make("ShuttingDown", _std.OperationalError, "shutting_down", True, "The arbiter is draining before it exits.")
Expired = _make(
    "Expired", _std.OperationalError, "expired", True,
    "The transaction ended before its commit (its lease lapsed or its connection was lost); "
    "it was rolled back: run it again.",
)
Refused = _make("Refused", _std.DatabaseError, "refused", False, "Against a guardrail or over a limit; nothing ran.")
ProtocolError = _make("ProtocolError", _std.InterfaceError, "protocol", False, "The two sides do not understand each other.")

_BY_CATEGORY = {
    "unavailable": Unavailable,
    "timeout": Timeout,
    "overloaded": Overloaded,
    "shutting_down": ShuttingDown,
    "expired": Expired,
    "refused": Refused,
    "protocol": ProtocolError,
}

# SQLite's primary result codes, and the class CPython's module raises
# for each (Modules/_sqlite/util.c).
_BY_CODE = {
    2: _std.InternalError,  # SQLITE_INTERNAL
    12: _std.InternalError,  # SQLITE_NOTFOUND
    7: MemoryError,  # SQLITE_NOMEM
    11: _std.DatabaseError,  # SQLITE_CORRUPT
    26: _std.DatabaseError,  # SQLITE_NOTADB
    18: _std.DataError,  # SQLITE_TOOBIG
    19: _std.IntegrityError,  # SQLITE_CONSTRAINT
    20: _std.IntegrityError,  # SQLITE_MISMATCH
    21: _std.InterfaceError,  # SQLITE_MISUSE
    25: _std.InterfaceError,  # SQLITE_RANGE
}
_OPERATIONAL = {1, 3, 4, 5, 6, 8, 9, 10, 13, 14, 15, 16, 17}


def _errorname(code: int) -> Optional[str]:
    """sqlite3's name of a result code (``SQLITE_BUSY_SNAPSHOT``): the
    module's other constants share their values (authorizer actions,
    limits). Asked only where sqlite3 names its errors (3.11+)."""
    return _RESULT_NAMES.get(code)


# Authorizer actions and their answers, limits and settings: the module's
# SQLITE_ constants that are not result codes.
_NOT_RESULTS = (
    "SQLITE_CREATE_", "SQLITE_DROP_", "SQLITE_LIMIT_", "SQLITE_DBCONFIG_", "SQLITE_DENY",
    "SQLITE_IGNORE", "SQLITE_OK",
)
_ACTIONS = {
    "SQLITE_ALTER_TABLE", "SQLITE_ANALYZE", "SQLITE_ATTACH", "SQLITE_DELETE", "SQLITE_DETACH",
    "SQLITE_FUNCTION", "SQLITE_INSERT", "SQLITE_PRAGMA", "SQLITE_READ", "SQLITE_RECURSIVE",
    "SQLITE_REINDEX", "SQLITE_SAVEPOINT", "SQLITE_SELECT", "SQLITE_TRANSACTION", "SQLITE_UPDATE",
}
_NAMED = sys.version_info >= (3, 11)  # sqlite3's errors carry codes and names
_RESULT_NAMES = {
    getattr(_std, name): name
    for name in dir(_std)
    if name.startswith("SQLITE_") and not name.startswith(_NOT_RESULTS) and name not in _ACTIONS
    and isinstance(getattr(_std, name), int)
}


# The arbiter's words when a statement's parameters do not fit it (only it
# could compile the statement: a table created in this transaction), and
# sqlite3's, which checks them itself and raises ProgrammingError.
_BINDINGS = (
    (re.compile(r"statement takes (\d+) parameter\(s\) but (\d+) were given$"),
     "Incorrect number of bindings supplied. The current statement uses %s, and there are %s supplied."),
    (re.compile(r"no value for parameter (.+)$"),
     "You did not supply a value for binding parameter %s."),
)


def sql_error(code: int, message: str) -> Exception:
    """The standard library's exception for an SQLite error ``code``."""
    primary = code & 0xFF
    if primary == 25:  # SQLITE_RANGE: the arbiter's parameter checks
        for pattern, words in _BINDINGS:
            m = pattern.match(message)
            if m:
                return _std.ProgrammingError(words % m.groups())
    cls = _BY_CODE.get(primary)
    if cls is None:
        cls = _std.OperationalError if primary in _OPERATIONAL else _std.DatabaseError
    if cls is MemoryError:
        return MemoryError(message)
    e = cls(message)
    if _NAMED:
        e.sqlite_errorcode = code  # type: ignore[attr-defined]
        e.sqlite_errorname = _errorname(code) or _errorname(primary)  # type: ignore[attr-defined]
    return e


def translate(e: Exception) -> Exception:
    """A scribe client error as the drop-in raises it."""
    if not isinstance(e, _scribe.ScribeError):
        return e
    # ``overloaded`` with SQLITE_BUSY: the request waited as long as the
    # connection's timeout allowed ("database is locked", as sqlite3).
    if e.category in ("sql", "conflict", "overloaded") and e.sqlite_code is not None:
        message = getattr(e, "sqlite_message", None) or e.message
        return sql_error(e.sqlite_code, message)
    if e.category == "conflict":
        return _std.IntegrityError(e.message)
    cls = _BY_CATEGORY.get(e.category, _std.OperationalError)
    out: Any = cls(e.message)
    out.retry_after_ms = e.retry_after_ms
    return out
