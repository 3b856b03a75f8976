"""Write sessions (interactive transactions) through the arbiter.

A session holds the database's one writer from its begin until its
commit or rollback: every statement in it, reads included, runs on the
arbiter's connection and sees the session's own writes. Other writers
queue behind it, so keep it short. It lives on its own connection: if
this process dies or the connection drops, the arbiter rolls it back at
once.
"""

import inspect
import json
import os
import random
import socket
import threading
import time
import http.client
from typing import Any, Callable, Dict, List, Optional, TypeVar

from .errors import Expired, ProtocolError, ScribeError, Timeout, Unavailable, from_response, RETRYABLE
from .keys import new_key
from .values import dumps
from .transport import roundtrip

__all__ = ["Transaction"]

T = TypeVar("T")

#: Failures after which a whole transaction may run again: nothing of it
#: was committed, and another try can succeed.
RUN_AGAIN = frozenset({"expired", "unavailable", "overloaded", "shutting_down"})


class Transaction:
    """One write session; use it as a context manager::

        with db.transaction() as tx:
            row = tx.query("SELECT id FROM tasks WHERE status = 'ready' LIMIT 1")
            tx.execute("UPDATE tasks SET status = 'claimed' WHERE id = ?", [row[0]["id"]])

    Leaving the block normally commits; an exception rolls back. A
    statement that fails raises (``SqlError``, ``Refused``, ...) and undoes
    only itself, as in SQLite: the session goes on unless the exception
    leaves the block.
    """

    def __init__(self, db: Any, idle: Optional[float] = None, total: Optional[float] = None,
                 foreign_keys: Optional[bool] = None) -> None:
        self._db = db
        self._idle = idle
        self._total = total
        self._foreign_keys = foreign_keys
        self._conn: Any = None
        self.session: Optional[int] = None
        self.receipt: Optional[Dict[str, Any]] = None
        # Why the session ended before its commit, if it did: every later
        # call, and the end of the block, raises it again (a function
        # that caught it must not pass for committed).
        self._ended: Optional[ScribeError] = None
        # The thread that began it (a write of that thread outside it would
        # wait for it), while it is open, and when it was last heard of.
        self._thread: Optional[int] = None
        self._last = 0.0
        self._lease = 1.0
        # The process it belongs to: a fork()ed child shares its
        # connection, so must not use it (nor end it).
        self._pid = os.getpid()

    # ----------------------------------------------------------- calls

    def begin(self) -> "Transaction":
        """Waits in the arbiter's queue until the writer serves this session."""
        self._not_forked()
        if self._conn is not None:
            raise ProtocolError("this transaction has already begun")
        self._ended = None
        body: Dict[str, Any] = {}
        if self._idle is not None:
            body["idle_ms"] = max(1, int(self._idle * 1000))
        if self._total is not None:
            body["total_ms"] = max(1, int(self._total * 1000))
        if self._foreign_keys is not None:
            body["foreign_keys"] = bool(self._foreign_keys)
        db = self._db
        db._not_in_own_transaction("db.transaction()")
        self._conn = db._connect(db.autostart)
        # The wait in the queue can be as long as the sessions ahead of it.
        try:
            began = self._call("/v1/begin", body, db.call_timeout + (self._total or 0) + 60.0)
            self.session = int(began["session"])
            # The idle lease the arbiter granted (it caps what was asked).
            self._lease = float(began.get("idle_ms", 1000)) / 1000.0
            self._thread = threading.get_ident()
            with db._open_lock:
                db._transactions.add(self)
        except BaseException:
            # No session: the connection goes, and begin may be tried again.
            self._close()
            raise
        return self

    def execute(self, sql: str, params: Any = None) -> Dict[str, Any]:
        """Runs one statement in the session: ``{"columns", "rows" (dicts),
        "rows_affected", "last_insert_rowid"}``."""
        from .values import _decode_value, _statement

        st = _statement({"sql": sql, "params": params})
        st.pop("expect_rows", None)
        result = self._call("/v1/exec", {"session": self._open(), "statement": st}, self._db.call_timeout)
        result["rows"] = [{k: _decode_value(v) for k, v in r.items()} for r in result.get("rows", [])]
        return result

    def query(self, sql: str, params: Any = None) -> List[Dict[str, Any]]:
        """Runs a statement in the session and returns its rows (as dicts)."""
        return self.execute(sql, params)["rows"]

    def commit(self, key: Optional[str] = None) -> Dict[str, Any]:
        """Commits; returns the receipt (``seq``). If the answer is lost,
        asks again by key on a new connection: never applied twice."""
        from .values import _decode_receipt

        session = self._open()
        key = key or new_key()
        try:
            r = self._call("/v1/commit", {"session": session, "key": key}, self._db.call_timeout)
        except Timeout:
            r = self._ask_again(key)
        finally:
            self._close()
        self.receipt = _decode_receipt(r)
        return self.receipt

    def rollback(self) -> None:
        """Rolls back (nothing of the session is written)."""
        self._ended = None  # rolled back, as asked: the block may end
        if self._conn is None or self.session is None or os.getpid() != self._pid:
            # Not open; or the parent's, in a fork()ed child: it is the
            # parent's to end (its connection is the parent's too).
            return
        try:
            self._call("/v1/rollback", {"session": self.session}, self._db.call_timeout)
        except ScribeError:
            pass  # ended already: nothing of it was written either way
        finally:
            self._close()

    # ----------------------------------------------------- the block

    def __enter__(self) -> "Transaction":
        if self._conn is None:
            self.begin()
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        if os.getpid() != self._pid:
            # A fork()ed child leaving the parent's block: the session is
            # the parent's to end.
            if kind is None:
                self._not_forked()
            return
        if self._conn is None:
            if kind is None and self._ended is not None:
                raise self._ended  # it ended uncommitted; the block must not pass
            return  # committed or rolled back inside the block
        if kind is None:
            self.commit()
        else:
            self.rollback()

    # ------------------------------------------------------- internal

    def _not_forked(self) -> None:
        if os.getpid() != self._pid:
            raise ProtocolError(
                "this transaction belongs to process %d, which this one was forked from: its "
                "session and connection are that process's (begin a transaction of this "
                "process's own)" % self._pid
            )

    def _open(self) -> int:
        self._not_forked()
        if self._ended is not None:
            raise self._ended
        if self._conn is None or self.session is None:
            raise ProtocolError("this transaction is not open (begin it, or use it in a with block)")
        return self.session

    def _holds(self, thread: int) -> bool:
        """Whether this transaction, begun on ``thread``, still holds the
        writer as far as this client knows: not ended, and heard of within
        its idle lease (one abandoned open, kept alive by a traceback,
        refused the thread's writes for as long as it lived; past the
        lease the arbiter has rolled it back)."""
        return (
            self._thread == thread and self._conn is not None and self._ended is None
            and time.monotonic() - self._last < self._lease
        )

    def _close(self) -> None:
        self._thread = None  # whichever thread ends it
        conn, self._conn = self._conn, None
        if conn is not None:
            self._db._unregister(conn)
            try:
                conn.close()
            except OSError:
                pass

    def _call(self, path: str, body: Dict[str, Any], timeout: float) -> Dict[str, Any]:
        data = dumps(body).encode("utf-8")
        if self._conn is not None and self._conn.sock is None and path != "/v1/begin":
            # Its connection was closed (db.close()): the session, which
            # belonged to it, was rolled back. Sending would open another
            # connection, which does not have it.
            self._close()
            self._ended = Expired(
                "write session ended: its connection to the arbiter was closed (the client was "
                "closed); it was rolled back and nothing of it was written (run the whole "
                "transaction again)"
            )
            raise self._ended
        try:
            status, headers, raw, _ = roundtrip(self._conn, "POST", path, data, timeout)
            self._last = time.monotonic()
        except socket.timeout as e:
            self._close()
            if path == "/v1/commit":
                raise Timeout(
                    "no answer from the arbiter within %.3gs (%s); a commit may or may not have "
                    "happened" % (timeout, path)
                ) from e
            # Its connection is closed, and the arbiter rolls a session back
            # the moment its connection closes: the outcome is known.
            self._ended = Expired(
                "no answer from the arbiter within %.3gs (%s); the write session's connection was "
                "closed, so it was rolled back and nothing of it was written (run the whole "
                "transaction again)" % (timeout, path)
            )
            raise self._ended from e
        except (OSError, http.client.HTTPException) as e:
            self._close()
            if path == "/v1/commit":
                raise Timeout("the connection was lost before the commit's answer: %s" % (e or type(e).__name__)) from e
            self._ended = Expired(
                "write session ended: its connection to the arbiter was lost (%s); it was rolled back "
                "and nothing of it was written (run the whole transaction again)" % (e or type(e).__name__)
            )
            raise self._ended from e
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        if status == 200 and isinstance(parsed, dict):
            return parsed
        err = from_response(status, parsed, headers.get("retry-after"))
        if status == 413:
            # Over the frame: the arbiter closes the connection, and the
            # session, which belonged to it, is rolled back with it.
            self._close()
            self._ended = Expired(
                "write session ended: a statement of it was over the arbiter's frame limit, and "
                "the arbiter closed its connection; it was rolled back and nothing of it was "
                "written (run the whole transaction again)"
            )
            err = type(err)(
                "%s; the arbiter closed the connection for it, which ended the write session: it "
                "was rolled back, nothing of it written" % err,
                status=status,
            )
        if err.category == "expired" or err.rolled_back:
            # The session is over (SQLite rolled it back with a
            # statement's error, or it lapsed).
            self._ended = err
            self._close()
        raise err

    def _ask_again(self, key: str) -> Dict[str, Any]:
        return commit_outcome(self._db, key)


def commit_outcome(db: Any, key: str) -> Dict[str, Any]:
    """The receipt of the commit made with ``key``, asked of the arbiter
    (which answers from the key's record; one started meanwhile too);
    ``Expired`` when nothing committed with it. Asked until ``retry_for``
    passes; if no arbiter answers by then, the outcome is still unknown:
    ``Timeout``, with the key (``Unavailable`` would say nothing was
    written, and a caller running the transaction again would apply it
    twice)."""
    body = json.dumps({"session": 0, "key": key}).encode()
    deadline = time.monotonic() + db.retry_for
    pause = 0.005
    while True:
        try:
            return db._call("POST", "/v1/commit", body, db.call_timeout, autostart=db.autostart)
        except ScribeError as e:
            if e.category not in RETRYABLE:
                raise
            if time.monotonic() + pause > deadline:
                unknown = Timeout(
                    "the commit was sent and its answer lost, and no arbiter answered when it "
                    "was asked again by its key %r (%s): whether it committed is unknown; ask "
                    "with db.commit_outcome(%r)" % (key, e, key)
                )
                unknown.key = key
                raise unknown from e
        time.sleep(pause * (0.5 + random.random() / 2))
        pause = min(pause * 2, 1.0)


def run(db: Any, fn: Callable[[Transaction], T], idle: Optional[float], total: Optional[float]) -> T:
    """Runs ``fn(tx)`` in a transaction and commits, running the whole of
    it again after a failure that left nothing written and may pass next
    time (``expired``, ``unavailable``, ``overloaded``, ``shutting_down``)."""
    if inspect.isgeneratorfunction(fn) or inspect.iscoroutinefunction(fn):
        # Called, it would run none of its body: an empty transaction
        # would commit, and the generator or coroutine pass for the result.
        raise TypeError("run_transaction(fn): fn must be a plain function, not a generator or coroutine function")
    deadline = time.monotonic() + db.retry_for
    pause = 0.005
    while True:
        try:
            with Transaction(db, idle, total) as tx:
                result = fn(tx)
                if inspect.isawaitable(result) or inspect.isgenerator(result):
                    raise TypeError(
                        "run_transaction(fn): fn returned a %s, whose body has not run; "
                        "the transaction was rolled back" % type(result).__name__
                    )
                return result
        except ScribeError as e:
            if e.category not in RUN_AGAIN or time.monotonic() + pause > deadline:
                raise
            if isinstance(e, Unavailable) and getattr(e, "_final", False):
                raise
        time.sleep(pause * (0.5 + random.random() / 2))
        pause = min(pause * 2, 1.0)
