"""``executemany`` of the drop-in: the statement for each parameter set,
sent to the arbiter in calls of up to ``CHUNK`` sets (``exec_many``, one
round trip each) instead of one call per set.

It runs in the open transaction; else in one of its own when nothing
would begin one (autocommit), committed at the end even when a set fails,
as sqlite3 commits each set on its own: the sets before a failing one
stay written, those after it never run, in both cases.
"""

import math
import sqlite3 as _std
from typing import Any, Optional, Tuple

from .remote import encode_params
from .route import Kind

__all__ = ["run_many"]

#: Parameter sets sent in one call.
CHUNK = 1000
#: Bytes of SQL text, strings and blobs (as base64) after which the sets
#: so far go without waiting for a thousand: a call stays well within a
#: frame (16 MiB) and a batch (8 MiB).
MAX_BYTES = 2 << 20


class _Many:
    """An ``executemany`` under way: the statements not yet sent (``None``
    before the first set), their rough size, the rows changed so far, and
    whether its transaction is its own."""

    __slots__ = ("chunk", "bytes", "total", "own")

    def __init__(self) -> None:
        self.chunk = None
        self.bytes = 0
        self.total = 0
        self.own = False


def run_many(conn, cur, sql: str, seq: Any, adapt):
    """``conn.executemany(sql, seq)`` into ``cur``; ``adapt`` adapts each
    parameter as sqlite3 does."""
    if not isinstance(sql, str):
        raise TypeError("executemany() argument 1 must be str, not %s" % type(sql).__name__)
    remote = conn._remote
    state = _Many()
    seen = -1  # the length of the last positional set checked
    try:
        for params in seq:
            positional = type(params) in _SEQUENCES
            if not positional or len(params) != seen:
                # A set of a new shape: a wrong count raises here, at that
                # set, as sqlite3 says it (the classifier caches by shape).
                kind, _ = conn._classifier.classify(sql, params)
                if kind not in (Kind.DML, Kind.UNKNOWN):
                    raise _std.ProgrammingError("executemany() can only execute DML statements.")
                seen = len(params) if positional else -1
            if state.chunk is None:
                state.chunk = []
                if remote.session is None:
                    state.own = not conn._implicit_begin()
                    remote.begin()
            encoded, size = _plain(params) if positional else (None, 0)
            if encoded is None:
                encoded = encode_params(params, adapt)
                size = _size(encoded)
            state.chunk.append({"sql": sql} if encoded is None else {"sql": sql, "params": encoded})
            state.bytes += len(sql) + size
            if len(state.chunk) >= CHUNK or state.bytes >= MAX_BYTES:
                _send(conn, state)
        if state.chunk:
            _send(conn, state)
        elif state.chunk is None:
            # No parameter sets: sqlite3 still checks the statement, and
            # begins the transaction a DML statement would.
            kind = conn._classifier.kind_only(sql)
            if kind not in (Kind.DML, Kind.UNKNOWN):
                raise _std.ProgrammingError("executemany() can only execute DML statements.")
            if kind == Kind.DML and remote.session is None and conn._implicit_begin():
                remote.begin()
    except BaseException:
        try:
            if state.chunk:
                _send(conn, state)  # the sets before the failing one
        finally:
            if state.own:
                conn.commit()
        raise
    if state.own:
        conn.commit()
    cur._remote([], [], state.total)
    return cur


def _send(conn, state: _Many) -> None:
    chunk, state.chunk, state.bytes = state.chunk, [], 0
    try:
        result = conn._remote.execute_many(chunk)
    except _std.OperationalError as e:
        raise conn._not_here(e) from None
    affected = int(result.get("rows_affected") or 0)
    state.total += affected
    conn._changes += affected
    if result.get("last_insert_rowid"):
        conn._last_rowid = int(result["last_insert_rowid"])


_SEQUENCES = (tuple, list)
_I64 = 1 << 63
_isfinite = math.isfinite


def _plain(params: Any) -> Tuple[Optional[list], int]:
    """The set as it goes in JSON, and its rough size, when every value is
    one sqlite3 binds as it is (a str, an int SQLite can hold, a finite
    float, None); else ``(None, 0)``, for the full path (adapters, blobs,
    NaN, what is refused)."""
    n = 0
    for v in params:
        t = type(v)
        if t is str:
            n += len(v) + 2
        elif t is int:
            if not -_I64 <= v < _I64:
                return None, 0
            n += 8
        elif t is float:
            if not _isfinite(v):
                return None, 0
            n += 8
        elif v is not None:
            return None, 0
    return list(params), n


def _size(encoded: Any) -> int:
    """Roughly the bytes ``encoded`` parameters take in JSON."""
    if encoded is None:
        return 0
    values = encoded.values() if isinstance(encoded, dict) else encoded
    n = 0
    for v in values:
        if isinstance(v, str):
            n += len(v) + 2
        elif isinstance(v, dict):  # a blob
            n += len(v["$blob"]) + 12
        else:
            n += 8
    return n
