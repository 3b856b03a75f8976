"""A connection opened read-only (``file:…?mode=ro`` with ``uri=True``):
sqlite3 then never writes, and a write fails with "attempt to write a
readonly database". Such a connection needs no arbiter: every statement,
transaction control included, runs on the local read-only connection, so
it behaves as sqlite3's own read-only connection does."""

import sqlite3 as _std
from typing import Any, Callable

__all__ = ["run", "run_many", "script"]


def run(cur: _std.Cursor, sql: str, params: Any) -> _std.Cursor:
    return _here(cur, _std.Cursor.execute, sql, params)


def run_many(cur: _std.Cursor, sql: str, seq: Any) -> _std.Cursor:
    return _here(cur, _std.Cursor.executemany, sql, seq)


def script(cur: _std.Cursor, text: Any) -> _std.Cursor:
    return _here(cur, _std.Cursor.executescript, text)


def _here(cur: _std.Cursor, method: Callable[..., Any], *args: Any) -> _std.Cursor:
    """Runs ``method`` of sqlite3's own cursor; the cursor's lastrowid is
    then sqlite3's too (the drop-in's cursor otherwise answers with the one
    the arbiter's writes set)."""
    cur._local()
    try:
        method(cur, *args)
    finally:
        cur._lastrowid = _std.Cursor.lastrowid.__get__(cur)
    return cur
