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
    _std.Cursor.execute(cur, sql, params)
    return cur


def run_many(cur: _std.Cursor, sql: str, seq: Any) -> _std.Cursor:
    cur._local()
    _std.Cursor.executemany(cur, sql, seq)
    return cur


def script(cur: _std.Cursor, text: Any) -> _std.Cursor:
    cur._local()
    _std.Cursor.executescript(cur, text)
    return cur
