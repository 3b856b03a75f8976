"""The drop-in's side of the arbiter: one framed connection per
``Connection``, writes with idempotency keys and retries, and the write
session a transaction runs in."""

import os
import time
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import errors as scribe_errors
from ..client import Scribe
from ..keys import new_key
from ..migrate_wait import migrate_on
from ..framed import FramedConnection, Lost, connect
from ..values import _decode_value
from .ending import NOT_BEGUN, Ending
from .errors import Expired, translate
from .pacing import BUSY, Pacer, ms, raise_unless_retryable

__all__ = ["Remote"]

#: The protocol's name for the session most recently begun on the
#: connection (2^64 - 1).
LATEST = (1 << 64) - 1


# Every live Remote, for a child of fork() to let go of its parent's.
_live: "weakref.WeakSet[Remote]" = weakref.WeakSet()


def _in_forked_child() -> None:
    for remote in list(_live):
        remote.forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_forked_child)


class Remote(Ending):
    """What a drop-in connection sends to the arbiter."""

    def __init__(self, scribe: Scribe, wait: float) -> None:
        _live.add(self)
        self.scribe = scribe
        self.wait = wait  # how long a write may wait for the arbiter
        self.conn: Optional[FramedConnection] = None
        self.session: Optional[int] = None
        # The last begin sent with a first statement failed (the
        # transaction is open and empty; BEGIN may be said again).
        self.begin_failed = False
        # ... and it failed because the arbiter refused it (database is
        # locked past the timeout, a stale snapshot, a stop): its statement
        # never ran, and trying that statement's parts again would only
        # wait again.
        self.begin_refused = False
        self._status: Optional[Dict[str, Any]] = None
        # The seq of the last commit this connection made (a write's, a
        # transaction's): its local reads must see it.
        self.last_seq = 0
        # Called once a session has begun, before its first answer counts;
        # what it raises rolls the session back and is raised.
        self.on_begun: Optional[Callable[[], None]] = None
        # PRAGMA foreign_keys as this connection last set it outside a
        # transaction; every write and begin carries it (None: the
        # arbiter's own setting applies).
        self.foreign_keys: Optional[bool] = None
        # PRAGMA defer_foreign_keys=ON said outside a transaction: SQLite
        # keeps it until a transaction ends (a read's own included: see
        # ``reading.py``), so the next session begins with it.
        # ``on_defer_end`` is told when a transaction ends while the local
        # reader has it on (``local_deferral``), to turn it off there too:
        # not on every write's path.
        self.defer_fks = False
        self.local_deferral = False
        self.on_defer_end: Optional[Callable[[], None]] = None

    # ----------------------------------------------------------- plumbing

    def _connection(self) -> FramedConnection:
        if self.conn is not None and self.conn.closed:
            # Closed under a call the program interrupted: any session on
            # it ended with it (a call in one says so: ``Expired``).
            self.conn = None
            if self.session is not None and self.session != NOT_BEGUN:
                self.session = None
                raise Expired(
                    "a call of this transaction was interrupted, which closed its connection to "
                    "the arbiter; the transaction was rolled back and nothing of it was written: "
                    "run it again"
                )
        if self.conn is None:
            pacer = None
            while True:
                try:
                    self.conn = self._connect()
                    break
                except scribe_errors.ScribeError as e:
                    # Refused at hello for now (every connection the arbiter
                    # serves is taken): wait a turn, as for the writer, until
                    # the busy timeout passes.
                    if e.category != "overloaded" or getattr(e, "_final", False):
                        raise
                    if pacer is None:
                        pacer = Pacer(self.wait, 0.01, jitter=True)
                    pacer.pause_or_raise(e, e)
        return self.conn

    def _connect(self) -> FramedConnection:
        try:
            return connect(self.scribe.paths, self.scribe.call_timeout)
        except scribe_errors.Unavailable as e:
            if not getattr(e, "missing", False):
                raise
            if self.scribe.autostart:
                self.scribe._start()
            elif not self.scribe._await_starting():
                raise
            return connect(self.scribe.paths, self.scribe.call_timeout)

    def limits(self) -> Tuple[int, int]:
        """Statements and parameter values one call may carry, as the
        arbiter said at hello."""
        try:
            limits = self._connection().hello.get("limits") or {}
        except scribe_errors.ScribeError as e:
            raise translate(e) from None
        return int(limits.get("max_statements") or 1 << 62), int(limits.get("max_values") or 1 << 62)

    def _drop(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    def abandon(self) -> None:
        """Ends the transaction by dropping the connection (the arbiter
        rolls it back the moment the connection closes), whatever was in
        flight on it."""
        self.session = None
        self._drop()

    def close(self) -> None:
        self._drop()

    def forked(self) -> None:
        """In a child of fork(): the socket and the transaction are the
        parent's. The child's copy of the socket is closed without a word
        to the arbiter (the parent's stays open, its transaction intact),
        and the child starts with no transaction of its own: its next call
        opens a connection of its own. Shared, the socket mixed the
        answers of both processes."""
        self._drop()
        self.session = None
        self.begin_failed = False
        self.begin_refused = False

    def _call(self, request: Dict[str, Any], timeout: float) -> Any:
        try:
            return self._connection().call(request, timeout)
        except Lost:
            self._drop()
            raise
        except scribe_errors.Timeout:
            self._drop()
            raise

    def status(self, fresh: bool = False) -> Dict[str, Any]:
        """The arbiter's status, asked once per connection (``fresh``: asked
        again, as after a restart that may have changed its settings)."""
        if self._status is None or fresh:
            try:
                self._status = self._call({"status": {}}, self.scribe.call_timeout)
            except Exception:  # noqa: BLE001  (a comparison is best effort)
                return {}  # asked again next time: an answer decides foreign_keys
        return self._status

    # ------------------------------------------------------------- writes

    def write(self, sql: str, params: Any) -> Dict[str, Any]:
        """One statement as one batch, retried safely (it carries a key)
        until ``wait`` passes; returns its result."""
        st: Dict[str, Any] = {"sql": sql}
        if params is not None:
            st["params"] = params
        # Its own transaction ends with it, as SQLite's autocommit write's
        # does, and with it any deferral said before (its keys are checked
        # at its end either way).
        self._deferral_ended()
        key = new_key()
        # It waits for the writer at most ``wait`` (the busy timeout), then
        # fails as sqlite3 does, not written.
        body = {"statements": [st], "key": key, "wait_ms": ms(self.wait)}
        if self.foreign_keys is not None:
            body["foreign_keys"] = self.foreign_keys
        request = {"write": body}
        pacer = None  # made at the first failure: most writes never need it
        # ... but its limit counts from here: a first try that hears nothing
        # for the whole call timeout has used the wait up already.
        started = time.monotonic()
        unknown = False  # a try's outcome is unknown (it may have committed)
        while True:
            try:
                receipt = self._call(request, self.scribe.call_timeout)
                self._committed(receipt)
                return receipt["results"][0]
            except Lost as e:
                unknown = unknown or e.sent
                err: Exception = scribe_errors.Unavailable("connection to the arbiter lost: %s" % e)
            except scribe_errors.Timeout as e:
                unknown = True
                err = e
            except scribe_errors.ScribeError as e:
                if unknown and e.sqlite_code == BUSY:
                    # The retry never started, but an earlier try may have
                    # committed: "database is locked" would say it did not.
                    raise translate(scribe_errors.Timeout(
                        "an earlier try's outcome is unknown, and the retry could not start in "
                        "time (%s); the write may or may not have committed" % e.message)) from None
                raise_unless_retryable(e)
                err = e
            if pacer is None:
                pacer = Pacer(self.wait - (time.monotonic() - started), 0.002, jitter=True)
            pacer.pause_or_raise(err, translate(err))
            body["wait_ms"] = ms(pacer.deadline - time.monotonic())

    def migrate(self, migrations: List[Dict[str, Any]]) -> Dict[str, Any]:
        """Schema migrations, applied once each by the arbiter."""
        try:
            # As long as they take, while the arbiter answers.
            return migrate_on(self._connection(), self.scribe.paths, migrations, self.scribe.call_timeout)
        except Lost as e:
            self._drop()
            raise translate(scribe_errors.Unavailable("connection to the arbiter lost: %s" % e)) from None
        except scribe_errors.ScribeError as e:
            if e.category == "timeout":
                self._drop()
            raise translate(e) from None

    # ----------------------------------------------------------- sessions

    def begin(self) -> None:
        """A transaction begins: on the arbiter with its first statement."""
        self.session = NOT_BEGUN
        self.begin_failed = False
        self.begin_refused = False

    def begin_was_refused(self) -> bool:
        """The transaction's begin, sent with its first statement, was
        refused by the arbiter: nothing of it ran, and it is still open
        and empty here."""
        return self.session == NOT_BEGUN and self.begin_refused

    def _begin_with(self, request: Dict[str, Any], timeout: float) -> Any:
        """Sends the begin and ``request`` (for session ``LATEST``) together; waits
        in the queue until the writer serves the session, retrying a begin
        refused for now (overloaded, restarting) until ``wait`` passes.
        Returns the answer to ``request``. When the begin fails, the
        transaction stays open and empty: the statement may be run again
        in it (as after sqlite3's ``database is locked`` in a deferred
        transaction), or ``BEGIN`` said again (as after a failed ``BEGIN
        IMMEDIATE``), or it may be rolled back; nothing ran in it."""
        pacer = Pacer(self.wait, 0.002, jitter=False)
        self.begin_failed = True  # until the begin's answer says otherwise
        self.begin_refused = False
        begin = {"wait_ms": ms(self.wait)}
        if self.foreign_keys is not None:
            begin["foreign_keys"] = self.foreign_keys
        while True:
            try:
                began, answer = self._connection().call_pair({"begin": begin}, request, self.wait + timeout)
            except Lost as e:
                # Were the session begun, it ended with the connection, and
                # nothing of it was written: both may go again.
                self._drop()
                err: Exception = scribe_errors.Unavailable("connection to the arbiter lost: %s" % e)
            except scribe_errors.Timeout as e:
                self._drop()
                raise translate(e) from None
            except scribe_errors.ScribeError as e:
                # No arbiter to send them to yet (one that could not start
                # beside another program's lock, say): nothing ran, and
                # both may go again while the wait lasts, as a write's do.
                raise_unless_retryable(e)
                self._drop()
                err = e
            else:
                if not isinstance(began, Exception):
                    self.session = int(began["session"])
                    self.begin_failed = False
                    if self.on_begun is not None:
                        try:
                            self.on_begun()
                        except BaseException:
                            # Nothing of it ran: the transaction stays open
                            # and empty, as after any failed begin.
                            self.rollback()
                            self.session = NOT_BEGUN
                            self.begin_failed = self.begin_refused = True
                            raise
                    if isinstance(answer, Exception):
                        raise answer
                    return answer
                self.begin_refused = True
                raise_unless_retryable(began)
                err = began
            pacer.pause_or_raise(err, translate(err))
            begin["wait_ms"] = ms(pacer.deadline - time.monotonic())

    def _in_session(self, request: Dict[str, Any], timeout: float) -> Any:
        try:
            return self._call(request, timeout)
        except Lost as e:
            self.session = None
            raise Expired(
                "the connection to the arbiter was lost (%s); the transaction was rolled back "
                "and nothing of it was written: run it again" % e
            ) from None
        except scribe_errors.ScribeError as e:
            if _ends_session(e):
                self.session = None
            raise translate(e) from None

    def execute(self, sql: str, params: Any) -> Dict[str, Any]:
        st: Dict[str, Any] = {"sql": sql}
        if params is not None:
            st["params"] = params
        return self._session_call("exec", "statement", st)

    def execute_many(self, statements: List[Dict[str, Any]]) -> Dict[str, Any]:
        """Runs ``statements`` in the transaction, in order, in one call;
        the first that fails raises, those before it stay done. Returns the
        rows they changed in all and the last one's rowid."""
        return self._session_call("exec_many", "statements", statements)

    def _session_call(self, op: str, field: str, body: Any) -> Dict[str, Any]:
        if self.session == NOT_BEGUN and self.defer_fks:
            # The transaction begins with the deferral said before it.
            self.defer_fks = False
            try:
                self._session_call("exec", "statement", {"sql": "PRAGMA defer_foreign_keys=ON"})
            except BaseException:
                self.defer_fks = self.session == NOT_BEGUN  # not begun: still to come
                raise
        if self.session == NOT_BEGUN:
            request = {op: {"session": LATEST, field: body}}
            try:
                return self._begin_with(request, self.scribe.call_timeout + 30.0)
            except scribe_errors.ScribeError as e:
                if _ends_session(e):
                    self.session = None
                raise translate(e) from None
        request = {op: {"session": self.session, field: body}}
        return self._in_session(request, self.scribe.call_timeout + 30.0)

def _ends_session(e: "scribe_errors.ScribeError") -> bool:
    """The write session is over after ``e``: it expired, or SQLite rolled
    its transaction back with a statement's error (``OR ROLLBACK``, a full
    disk), which is raised as that error, as sqlite3 raises it."""
    return e.category == "expired" or e.rolled_back


def rows_of(result: Dict[str, Any]) -> Tuple[List[str], List[tuple]]:
    """Column names and rows (as tuples) of a statement's result."""
    columns = list(result.get("columns") or ())
    rows = [tuple(_decode_value(v) for v in row) for row in result.get("rows") or ()]
    return columns, rows
