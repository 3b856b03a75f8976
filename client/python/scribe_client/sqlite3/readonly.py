"""A connection opened read-only (``file:…?mode=ro`` with ``uri=True``):
sqlite3 then never writes, and a write fails with "attempt to write a
readonly database". Such a connection needs no arbiter: every statement,
transaction control included, runs on the local read-only connection, so
it behaves as sqlite3's own read-only connection does."""

import sqlite3 as _std
from typing import Any

__all__ = ["run", "run_many", "script"]


def run(cur: _std.Cursor, sql: str, params: Any) -> _std.Cursor:
    cur._local()
    try:
        _std.Cursor.execute(cur, sql, params)
    finally:
        _own_rowid(cur)
    return cur


def run_many(cur: _std.Cursor, sql: str, seq: Any) -> _std.Cursor:
    cur._local()
    try:
        _std.Cursor.executemany(cur, sql, seq)
    finally:
        _own_rowid(cur)
    return cur


def script(cur: _std.Cursor, text: Any) -> _std.Cursor:
    cur._local()
    try:
        _std.Cursor.executescript(cur, text)
    finally:
        _own_rowid(cur)
    return cur


def _own_rowid(cur: _std.Cursor) -> None:
    """The cursor's lastrowid is sqlite3's own here (the drop-in's cursor
    otherwise answers with the one the arbiter's writes set)."""
    cur._lastrowid = _std.Cursor.lastrowid.__get__(cur)
