"""``executemany`` of the drop-in: the statement for each parameter set,
sent to the arbiter in calls of many sets (``exec_many``, one round trip
each) instead of one call per set.

In a transaction (the open one, or the one a DML statement begins as
``isolation_level`` says) the calls run in it. In autocommit each call is
a transaction of its own, committed once it has run. Either way a call's
sets run inside a savepoint: when one fails, the call is undone to it
and its sets run again one by one, so that the error is raised at the
failing set with the sets before it done (and written, in autocommit)
and counted, as in sqlite3's own loop. Should an autocommit call end
with nothing written (a set's ``OR ROLLBACK``, a trigger's
``RAISE(ROLLBACK)``: SQLite rolled the transaction back), its sets run
again one by one as writes of their own.

A call goes once it holds ``CHUNK`` sets (or the arbiter's
``--max-statements``), its values reach ``--max-values``, its text and
blobs ``MAX_BYTES`` (a frame holds 16 MiB), or its first set has waited
``MAX_HOLD`` (a slow source of sets must not let a transaction's idle
lease lapse between calls).
"""

import math
import sqlite3 as _std
import time
from typing import Any, Optional, Tuple

from .errors import Expired, ScribeMixin
from .remote import encode_params
from .route import Kind

__all__ = ["run_many"]

#: Parameter sets sent in one call, at most.
CHUNK = 1000
#: Rough bytes of SQL text, strings and blobs (as base64) per call, at most.
MAX_BYTES = 2 << 20
#: Seconds a set waits for the others of its call, at most.
MAX_HOLD = 0.2

_monotonic = time.monotonic
#: Around each call's sets (a name no program is likely to use).
_SAVE = {"sql": "SAVEPOINT scribe_executemany"}
_UNDO = {"sql": "ROLLBACK TO scribe_executemany"}
_RELEASE = {"sql": "RELEASE scribe_executemany"}


class _Many:
    """An ``executemany`` under way."""

    __slots__ = ("chunk", "bytes", "values", "since", "total", "own", "limits")

    def __init__(self) -> None:
        self.chunk = None  # the sets not yet sent (None before the first)
        self.bytes = 0
        self.values = 0
        self.since = 0.0  # when the chunk's first set came
        self.total = 0  # rows changed so far
        self.own = False  # autocommit: each call its own transaction
        self.limits = (CHUNK, 1 << 62)  # sets and values per call


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
                most, values = remote.limits(CHUNK + 2)
                state.limits = (max(1, most - 2), values)  # and the savepoint's two
                if remote.session is None:
                    state.own = not conn._implicit_begin()
                    if not state.own:
                        remote.begin()
            encoded, size = _plain(params) if positional else (None, 0)
            if encoded is None:
                encoded = encode_params(params, adapt)
                size = _size(encoded)
            size += len(sql)
            values = len(encoded) if encoded is not None else 0
            if state.chunk and (
                len(state.chunk) >= state.limits[0]
                or state.values + values > state.limits[1]
                or state.bytes + size > MAX_BYTES
                or _monotonic() - state.since >= MAX_HOLD
            ):
                _send(conn, state)
            if not state.chunk:
                state.since = _monotonic()
            state.chunk.append({"sql": sql} if encoded is None else {"sql": sql, "params": encoded})
            state.bytes += size
            state.values += values
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
        cur._remote([], [], -1)  # as sqlite3 leaves a failed executemany's cursor
        if state.chunk:
            _send(conn, state)  # the sets before the failing one
        raise
    cur._remote([], [], state.total)
    return cur


def _send(conn, state: _Many) -> None:
    chunk, state.chunk, state.bytes, state.values = state.chunk, [], 0, 0
    remote = conn._remote
    if state.own:
        remote.begin()
    try:
        result = remote.execute_many([_SAVE] + chunk + [_RELEASE])
    except Expired:
        if not state.own:
            raise
        # Its transaction ended with nothing written: set by set instead.
        _each(conn, state, chunk, remote.write)
        return
    except Exception as e:
        if isinstance(e, ScribeMixin) and e.category != "refused":
            # Not a set's failure (the arbiter is away, a deadline passed).
            if state.own:
                conn.rollback()
            raise
        try:
            # A set failed, those before it done: undone, then again one by
            # one, so that they are counted and the error comes at its set.
            remote.execute_many([_UNDO, _RELEASE])
            _each(conn, state, chunk, remote.execute)
        finally:
            if state.own:
                conn.commit()
        return
    if state.own:
        conn.commit()
    _count(conn, state, result)


def _each(conn, state: _Many, chunk: list, run) -> None:
    """Runs the sets of ``chunk`` one by one with ``run(sql, params)``."""
    for st in chunk:
        try:
            result = run(st["sql"], st.get("params"))
        except _std.OperationalError as e:
            raise conn._not_here(e) from None
        _count(conn, state, result)


def _count(conn, state: _Many, result: dict) -> None:
    affected = int(result.get("rows_affected") or 0)
    state.total += affected
    conn._changes += affected
    if result.get("last_insert_rowid"):
        conn._last_rowid = int(result["last_insert_rowid"])


_SEQUENCES = (tuple, list)
_I64 = 1 << 63
_isfinite = math.isfinite


def _text(v: str) -> int:
    """Bytes ``v`` may take in JSON: UTF-8 takes up to 4 a character."""
    return len(v) + 2 if v.isascii() else 4 * len(v) + 2


def _plain(params: Any) -> Tuple[Optional[list], int]:
    """The set as it goes in JSON, and its rough size, when every value is
    one sqlite3 binds as it is (a str, an int SQLite can hold, a finite
    float, None); else ``(None, 0)``, for the full path (adapters, blobs,
    NaN, what is refused)."""
    n = 0
    for v in params:
        t = type(v)
        if t is str:
            n += _text(v)
        elif t is int:
            if not -_I64 <= v < _I64:
                return None, 0
            n += 8
        elif t is float:
            if not _isfinite(v):
                return None, 0
            n += 8
        elif v is None:
            n += 4
        else:
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
            n += _text(v)
        elif isinstance(v, dict):  # a blob
            n += len(v["$blob"]) + 12
        else:
            n += 8
    return n
