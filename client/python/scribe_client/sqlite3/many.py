"""``executemany`` of the drop-in: the statement for each parameter set,
sent to the arbiter in calls of many sets (``exec_many``, one round trip
each) instead of one call per set.

In a transaction (the open one, or the one a DML statement begins as
``isolation_level`` says) a call's sets run inside a savepoint; when one
fails, the call is undone to it and its sets run again one by one, so
that the error is raised at the failing set with the sets before it done
and counted, as in sqlite3's own loop. In autocommit (and for DDL, which
begins no transaction) each call is a transaction of its own; should a
set fail or the transaction end without its commit (a set's ``OR
ROLLBACK``, a deferred constraint), nothing of it is written and its
sets run again one by one as writes of their own, as sqlite3 commits
each.

A call goes before it would pass ``CHUNK`` sets (or the arbiter's
``--max-statements``), ``--max-values``, or ``MAX_BYTES`` of text and
blobs (a frame holds 16 MiB); and a set that comes ``MAX_HOLD`` or more
after the previous call goes at once, as in sqlite3 (a slow source of
sets must not let a transaction's idle lease lapse between calls).
"""

import math
import sqlite3 as _std
import sys
import time
from typing import Any, Optional, Tuple

from .errors import Expired, ScribeMixin
from .adapting import encode_params
from .first_word import begins
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
        self.since = _monotonic()  # when the latest call went (or the start)
        self.total = 0  # rows changed so far
        self.own = False  # autocommit: each call its own transaction
        self.limits = (CHUNK, 1 << 62)  # sets and values per call


def run_many(conn, cur, sql: str, seq: Any, adapt):
    """``conn.executemany(sql, seq)`` into ``cur``; ``adapt`` adapts each
    parameter as sqlite3 does."""
    if not isinstance(sql, str):
        raise TypeError("executemany() argument 1 must be str, not %s" % type(sql).__name__)
    if conn._schema_in_session:
        conn._schema_settled()
    if _EMPTY_RUNS and conn._classifier.kind_only(sql) == Kind.EMPTY:
        # Before 3.11 sqlite3 takes it (no statement to call DML or not):
        # the local connection answers exactly as sqlite3.
        cur._local()
        _std.Cursor.executemany(cur, sql, seq)
        return cur
    remote = conn._remote
    state = _Many()
    seen = -1  # the length of the last positional set checked
    # Values go as they are unless an adapter is registered for str, int,
    # float or None themselves (sqlite3 then adapts every value).
    plain = _plain if not any((t, _std.PrepareProtocol) in _std.adapters for t in _PLAIN) else _never
    try:
        for params in seq:
            positional = type(params) in _SEQUENCES
            if not positional or len(params) != seen:
                # A set of a new shape: a wrong count raises here, at that
                # set, as sqlite3 says it (the classifier caches by shape).
                kind = _taken(conn._classifier.classify(sql, params)[0])
                seen = len(params) if positional else -1
            if state.chunk is None:
                conn._own_functions(sql)
                state.chunk = []
                most, values = remote.limits()
                state.limits = (max(1, min(CHUNK, most - 2)), values)  # and the savepoint's two
                if remote.session is None:
                    state.own = not conn._opens(kind, begins(sql))
                    if not state.own:
                        conn._begin()
            encoded, size = plain(params) if positional else (None, 0)
            if encoded is None:
                c = conn._classifier
                encoded = encode_params(params, adapt, c.unused_in(sql, params), c.asked(sql, params), c.order_of(sql))
                size = _size(encoded)
            size += len(sql)
            values = len(encoded) if encoded is not None else 0
            if state.chunk and (
                len(state.chunk) >= state.limits[0]
                or state.values + values > state.limits[1]
                or state.bytes + size > MAX_BYTES
            ):
                _send(conn, state)
            state.chunk.append({"sql": sql} if encoded is None else {"sql": sql, "params": encoded})
            state.bytes += size
            state.values += values
            if _monotonic() - state.since >= MAX_HOLD:
                # Sets come slowly: this one goes now, as in sqlite3.
                _send(conn, state)
        if state.chunk:
            _send(conn, state)
        elif state.chunk is None:
            # No parameter sets: sqlite3 still checks the statement, and
            # begins the transaction a DML statement would.
            kind = _taken(conn._classifier.kind_only(sql))
            if remote.session is None and conn._opens(kind, begins(sql)):
                conn._begin()
    except BaseException as e:
        if (
            state.chunk is None
            and remote.session is None
            and isinstance(e, (_std.ProgrammingError, OverflowError))
            and conn._opens(Kind.DML, begins(sql))
        ):
            # The first set does not fit: sqlite3 has begun the transaction
            # before binding it.
            conn._begin()
        cur._remote([], [], -1)  # as sqlite3 leaves a failed executemany's cursor
        if state.chunk:
            _send(conn, state)  # the sets before the failing one
        raise
    if state.chunk is not None and kind in (Kind.WRITE, Kind.UNKNOWN):
        conn._classifier.forget()  # the schema may have changed
        conn._schema_in_session = remote.session is not None
    # sqlite3 counts rows only for a statement that `begins`.
    cur._remote([], [], state.total if begins(sql) else -1)
    return cur


def _taken(kind: str) -> str:
    """``kind``, if executemany takes it (sqlite3 refuses only statements
    that write nothing)."""
    if kind not in _MANY_KINDS:
        raise _std.ProgrammingError("executemany() can only execute DML statements.")
    return kind


def _send(conn, state: _Many) -> None:
    chunk, state.chunk, state.bytes, state.values = state.chunk, [], 0, 0
    state.since = _monotonic()
    if state.own:
        _send_own(conn, state, chunk)
        return
    remote = conn._remote
    try:
        result = remote.execute_many([_SAVE] + chunk + [_RELEASE])
    except Exception as e:
        # The transaction's begin failed with this call (database is
        # locked past timeout): nothing ran, nothing to undo or try again.
        if conn._begin_refused():
            raise
        # The transaction ended (SQLite rolled it back at a set: OR
        # ROLLBACK), as in sqlite3 nothing of it is left to go on with.
        if _not_a_set(e, expired_too=True) or remote.session is None:
            raise
        # A set failed, those before it done; or the call did not run at
        # all (refused whole, or not sent). Undone to the savepoint if it
        # ran, then set by set: the error comes at its set, the sets
        # before it done and counted.
        try:
            remote.execute_many([_UNDO, _RELEASE])
        except _std.OperationalError as undo:
            if "no such savepoint" not in str(undo):
                raise
        _each(conn, state, chunk, remote.execute)
        return
    _count(conn, state, result)


def _send_own(conn, state: _Many, chunk: list) -> None:
    """A call in a transaction of its own (autocommit). Should a set fail,
    or the transaction end without its commit, nothing of the call is
    written: its sets then go one by one, each a write of its own, as
    sqlite3 commits each."""
    remote = conn._remote
    conn._begin()
    try:
        result = remote.execute_many([_SAVE] + chunk + [_RELEASE])
        # The arbiter's own: no transaction of the program's ends here.
        remote.commit()
    except Exception as e:
        # Its begin failed (database is locked past timeout): the sets
        # one by one would wait as long again, each.
        refused = remote.begin_was_refused()
        remote.rollback()
        if refused or _not_a_set(e, expired_too=False):
            raise
        _each(conn, state, chunk, remote.write)
        return
    except BaseException:
        # Interrupted (Ctrl-C), perhaps with the begin still in flight: the
        # connection goes, and the arbiter rolls back a session whose
        # connection closed at once, so no transaction of ours holds its
        # writer for a program that thinks it is in autocommit.
        remote.abandon()
        raise
    _count(conn, state, result)


def _not_a_set(e: Exception, expired_too: bool) -> bool:
    """True for a failure that is not a set's (the arbiter is away, a
    deadline passed; with ``expired_too``, the transaction ended): nothing
    is tried again."""
    if isinstance(e, ScribeMixin):
        return e.category != "refused" and (expired_too or e.category != "expired")
    return not isinstance(e, (_std.Error, ValueError, TypeError, OverflowError, MemoryError))


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
    conn._last_changes = affected
    if result.get("last_insert_rowid"):
        conn._last_rowid = int(result["last_insert_rowid"])


_SEQUENCES = (tuple, list)
_MANY_KINDS = (Kind.DML, Kind.WRITE, Kind.UNKNOWN)
_EMPTY_RUNS = sys.version_info < (3, 11)
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


def _never(params: Any) -> Tuple[Optional[list], int]:
    """The full path for every set (see ``_plain``)."""
    return None, 0


_PLAIN = (str, int, float, type(None))


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
