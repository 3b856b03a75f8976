"""``Scribe``: writes through the arbiter, reads the file directly."""

import json
import os
import random
import socket
import sqlite3
import threading
import weakref
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, TypeVar, Union

from .errors import RETRYABLE, Refused, ScribeError, Timeout, Unavailable
from .autostart import AutoStart
from .calls import Calls
from .per_thread import PerThread
from .starting import starting
from .keys import new_key
from .values import _decode_receipt, _query_params, _sql_error, _statement, dumps
from .paths import Paths, describe_marker, read_marker

if TYPE_CHECKING:
    from .transaction import Transaction

__all__ = ["Scribe"]

T = TypeVar("T")

#: First pause between tries, and the cap, as in the Rust client.
_FIRST_PAUSE = 0.005
_MAX_PAUSE = 1.0

Params = Union[None, Sequence[Any], Mapping[str, Any]]


def _env_says_off(value: Optional[str]) -> bool:
    return value is not None and value.strip().lower() in ("0", "false", "no", "off")


class Scribe(AutoStart, Calls, PerThread):
    """A client of one scribe-managed SQLite database.

    Writes go to the arbiter ``scribed`` (HTTP/JSON on
    ``<db>.scribe.http.sock``), each with an idempotency key, and are
    retried on retryable failures until ``retry_for`` seconds have passed.
    Reads open the file directly, read-only.

    Thread-safe: each thread gets its own HTTP connection and its own
    read-only SQLite connection. Safe across ``fork()``: a child makes its
    own connections.
    """

    def __init__(
        self,
        db_path: Union[str, bytes, "os.PathLike[str]"],
        *,
        autostart: bool = True,
        ready_timeout: float = 5.0,
        retry_for: float = 30.0,
        scribe_bin: Optional[str] = None,
        call_timeout: float = 10.0,
        busy_timeout: float = 5.0,
    ) -> None:
        self.paths = Paths(db_path)
        self.autostart = bool(autostart) and not _env_says_off(os.environ.get("SCRIBE_AUTOSTART"))
        self.ready_timeout = float(ready_timeout)
        self.retry_for = float(retry_for)
        self.call_timeout = float(call_timeout)
        self.busy_timeout = float(busy_timeout)
        # How long to wait for an arbiter busy starting (migrations at
        # open): the drop-in sets its `timeout`; None, a call's deadline.
        self.starting_wait: Optional[float] = None
        self._scribe_bin = scribe_bin
        self._local = threading.local()
        self._start_lock = threading.Lock()
        # Every connection this process opened (any thread), for close();
        # a new generation makes each thread open fresh ones.
        self._open: List[Any] = []
        self._inherited: List[Any] = []
        self._open_lock = threading.Lock()
        # Transactions begun and not ended, each with the thread that began
        # it: a write of that thread would wait for it (weak: one dropped
        # unended counts no more).
        self._transactions: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self._generation = 0
        self._pid = os.getpid()

    # ------------------------------------------------------------ writes

    def write(
        self,
        sql: str,
        params: Params = None,
        key: Optional[str] = None,
        expect_rows: Optional[int] = None,
        foreign_keys: Optional[bool] = None,
    ) -> Dict[str, Any]:
        """Runs one statement as one batch through the arbiter; returns the
        receipt ``{"seq", "replayed", "results": [{"rows_affected",
        "last_insert_rowid", "columns", "rows"}]}`` (``rows`` holds the rows
        of a ``RETURNING`` clause as dicts, blobs as ``bytes``)."""
        return self.batch([{"sql": sql, "params": params, "expect_rows": expect_rows}], key=key,
                          foreign_keys=foreign_keys)

    def batch(self, statements: Iterable[Any], key: Optional[str] = None,
              foreign_keys: Optional[bool] = None) -> Dict[str, Any]:
        """Runs every statement as ONE atomic batch. A statement is a SQL
        string, a dict ``{"sql", "params", "expect_rows"}`` or a tuple
        ``(sql, params, expect_rows)`` (trailing items optional).
        ``foreign_keys`` says whether its statements are checked against
        foreign keys, as ``PRAGMA foreign_keys`` would on a connection of
        its own (``None``: the arbiter's setting)."""
        if isinstance(statements, (str, bytes)):
            # A string is iterable: it would be sent a character at a time.
            raise TypeError("batch() takes a list of statements: batch([sql]), or write(sql)")
        if key is None:
            key = new_key()
        elif not isinstance(key, str):
            raise TypeError("key is a string")
        self._not_in_own_transaction("db.write() and db.batch()")
        payload = {"statements": [_statement(s) for s in statements], "key": key}
        if foreign_keys is not None:
            payload["foreign_keys"] = bool(foreign_keys)
        body = dumps(payload).encode("utf-8")
        return _decode_receipt(self._write(body))

    def _write(self, body: bytes) -> Dict[str, Any]:
        return self._call_retrying("POST", "/v1/write", body, self.call_timeout)

    def _call_retrying(self, method: str, path: str, body: bytes, timeout: float) -> Dict[str, Any]:
        """A call that is safe to repeat, retried on retryable failures."""
        return self._retrying(lambda: self._call(method, path, body, timeout, autostart=True))

    def _retrying(self, attempt: Callable[[], Any]) -> Any:
        """``attempt()`` (safe to repeat), retried on retryable failures
        until ``retry_for`` passes."""
        deadline = time.monotonic() + self.retry_for
        step = _FIRST_PAUSE
        while True:
            try:
                return attempt()
            except ScribeError as e:
                if e.category not in RETRYABLE or getattr(e, "_final", False):
                    raise
                if e.category in ("unavailable", "shutting_down"):
                    marker = read_marker(self.paths.stop_marker)
                    if marker is not None:
                        # Stopped on purpose: waiting it out would look like a hang.
                        raise Unavailable(
                            "no arbiter is running for %s: %s" % (self.paths.db, describe_marker(marker)),
                            status=e.status,
                        ) from e
                pause = step * (0.5 + 0.5 * random.random())
                step = min(step * 2, _MAX_PAUSE)
                if e.retry_after_ms:
                    pause = max(pause, e.retry_after_ms / 1000.0)
                if time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)

    def transaction(self, idle: Optional[float] = None, total: Optional[float] = None,
                    foreign_keys: Optional[bool] = None) -> "Transaction":
        """A write session, for read-then-write code: ``with
        db.transaction() as tx: ...`` commits at the end of the block and
        rolls back on an exception. ``idle`` and ``total`` (seconds) ask
        for a lease (the arbiter caps both); ``foreign_keys`` as for
        ``batch``. The session holds the writer: every other write waits
        until it ends."""
        from .transaction import Transaction

        return Transaction(self, idle, total, foreign_keys)

    def run_transaction(
        self, fn: Callable[["Transaction"], T], idle: Optional[float] = None, total: Optional[float] = None
    ) -> T:
        """Runs ``fn(tx)`` in a transaction and commits; a failure that
        left nothing written and may pass next time (the session lapsed,
        the arbiter restarted, ...) runs the whole of ``fn`` again, until
        ``retry_for`` passes. ``fn`` must be safe to run more than once."""
        from .transaction import run

        return run(self, fn, idle, total)

    def commit_outcome(self, key: str) -> Dict[str, Any]:
        """The receipt of a transaction committed with ``key`` (a
        ``Timeout`` from ``commit()`` carries it as ``.key``), answered from
        the key's record: ``Expired`` when nothing committed with it;
        ``Timeout`` again while no arbiter answers."""
        from .transaction import commit_outcome

        return _decode_receipt(commit_outcome(self, key))

    def migrate(self, migrations: Any) -> Dict[str, Any]:
        """Brings the schema up to the last of ``migrations``: a directory
        of ``NNNN_name.sql`` files, or a list of ``(version, name, sql)``
        tuples or ``{"version", "name", "sql", "foreign_keys_off"}`` dicts
        (versions 1, 2, 3... with no gap). Any number of processes may
        call it at once with the same list: each step runs once. Returns
        ``{"before", "after", "applied", "newer", "seq"}``; ``newer`` says
        the database is past this list (a newer program migrated it)."""
        from .migrations import as_list

        self._not_in_own_transaction("db.migrate()")
        listed = as_list(migrations)
        # On the framed socket: it waits as long as the migrations take,
        # while the arbiter answers a status every call timeout.
        from .migrate_wait import migrate_with

        return self._retrying(lambda: migrate_with(self, listed))

    # ------------------------------------------------------------- reads

    def query(self, sql: str, params: Params = None) -> List[Dict[str, Any]]:
        """Runs one query directly on the file (read-only) and returns its
        rows as dicts (blobs as ``bytes``). A missing database is created
        by the arbiter (auto-started if needed), never by a reader."""
        conn = self._reader()
        try:
            cur = conn.execute(sql, _query_params(params))
            try:
                columns = [d[0] for d in cur.description or ()]
                rows = cur.fetchall()
            finally:
                cur.close()
        except sqlite3.Error as e:
            raise _sql_error(e) from e
        return [dict(zip(columns, row)) for row in rows]

    def current_seq(self) -> int:
        """The latest commit visible in the file (0 before the first)."""
        conn = self._reader()
        # A file an arbiter of an older release still writes has no view:
        # its _scribe_meta row is then bumped by every commit.
        row = _one_row(conn, "SELECT seq FROM _scribe_seq")
        if row is None:
            row = _one_row(conn, "SELECT value FROM _scribe_meta WHERE key = 'seq'")
        if row is None or row[0] is None:
            return 0
        try:
            return max(0, int(row[0]))
        except (TypeError, ValueError):
            return 0

    def wait_for(self, seq: int, timeout: float = 10.0) -> int:
        """Read-your-writes: returns once commit ``seq`` (a receipt's
        ``seq``) or a later one is visible to ``query()``; returns the
        visible seq. Raises ``Timeout`` when ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        seen = self.current_seq()
        if seen >= seq:
            return seen
        remaining = deadline - time.monotonic()
        if remaining > 0:
            body = json.dumps({"seq": int(seq), "timeout_ms": int(remaining * 1000)}).encode()
            try:
                self._call("POST", "/v1/wait", body, remaining + 2.0, autostart=False)
            except Timeout:
                pass  # reported below, with what is visible
            except ScribeError:
                pass  # no arbiter to ask (or it is going away): poll the file
        pause = 0.0005
        while True:
            seen = self.current_seq()
            if seen >= seq:
                return seen
            now = time.monotonic()
            if now >= deadline:
                raise Timeout(
                    "commit %d not visible within %.3gs (the latest visible is %d)"
                    % (seq, timeout, seen)
                )
            time.sleep(min(pause, deadline - now))
            pause = min(pause * 2, 0.005)

    def status(self) -> Dict[str, Any]:
        """The arbiter's status (never starts one: ``Unavailable`` when none
        runs, or while it starts: applying migrations at open, say)."""
        now = starting(self.paths)
        if now is not None and not self._accepts():
            pid, phase, since = now
            raise Unavailable(
                "the arbiter (pid %d) is starting: %s (for %d s); it serves once that is done"
                % (pid, phase, since)
            )
        return self._call("GET", "/v1/status", None, self.call_timeout, autostart=False)

    # --------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Closes the connections of every thread (a later call opens new
        ones). Another thread's are ended without being taken from under
        it: its sockets are shut down (a call it is in fails as a lost
        connection), and its reader is closed by that thread, at its next
        call or as it ends (closing a sqlite3 connection another thread is
        using crashed the process)."""
        loc = self._tls()  # after a fork(), only the child's own connections are closed
        mine = {id(c) for c in loc.owned}
        with self._open_lock:
            conns, self._open = self._open, []
            self._generation += 1
        for c in conns:
            try:
                if id(c) in mine or not isinstance(c, sqlite3.Connection):
                    sock = getattr(c, "sock", None)
                    if sock is not None and id(c) not in mine:
                        sock.shutdown(socket.SHUT_RDWR)
                    else:
                        c.close()
            except Exception:  # noqa: BLE001  (closing is best effort)
                pass

    def __enter__(self) -> "Scribe":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return "Scribe(%r)" % self.paths.db

    # ---------------------------------------------------------- internal

    def _not_in_own_transaction(self, what: str) -> None:
        """Refuses a write this thread would wait for for ever: its own open
        transaction holds the writer, and cannot end while the thread
        waits. (It waited until the session's lease lapsed, then wrote
        outside it; ``run_transaction`` ran the function again, and wrote
        it again, until ``retry_for`` passed.)"""
        me = threading.get_ident()
        with self._open_lock:
            open_here = [t for t in self._transactions if t._holds(me)]
        if open_here:
            raise Refused(
                "%s on the thread that has a transaction of %s open: it holds the writer, so "
                "this would wait for it to end, which it cannot while this thread waits; write "
                "inside it with tx.execute(), or after it ends (nothing was written)"
                % (what, self.paths.db)
            )

def _one_row(conn: sqlite3.Connection, sql: str) -> Optional[tuple]:
    """The first row ``sql`` reads; None when none, or its table does not
    exist (yet)."""
    try:
        return conn.execute(sql).fetchone()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return None
        raise _sql_error(e) from e
    except sqlite3.Error as e:
        raise _sql_error(e) from e
