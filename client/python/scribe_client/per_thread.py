"""Each thread's own connections to the arbiter and the file (a mixin of
``Scribe``): made when first needed, made afresh in a fork()ed child or
after ``close()``, and closed when the thread ends."""

import os
import sqlite3
import threading
import urllib.parse
import weakref
from typing import Any, List

from .errors import Refused, Unavailable
from .paths import name_trouble
from .values import _sql_error

__all__ = ["PerThread"]


class PerThread:
    """Uses the client's ``paths``, ``autostart``, ``busy_timeout``,
    ``_local``, ``_open`` and its lock, ``_generation``, ``_pid``,
    ``_inherited``, ``_transactions``, and the connection half's
    ``_connect`` and ``_register``."""

    def _tls(self) -> threading.local:
        loc = self._local
        pid = os.getpid()
        if pid != self._pid:
            # In a fork()ed child: never touch the parent's connections
            # (they stay referenced, so they are not closed here).
            with self._open_lock:
                if pid != self._pid:
                    self._pid = pid
                    self._generation += 1
                    self._inherited = self._open
                    self._open = []
                    # The parent's transactions are not the child's.
                    self._transactions = weakref.WeakSet()
        if getattr(loc, "gen", None) != self._generation:
            loc.gen = self._generation
            loc.http = None
            loc.http_used = 0.0
            loc.reader = None
            # This thread's connections, closed when it ends (its locals
            # go, and the sentinel with them): a thread-per-request server
            # left one of each per thread it ever ran, until the arbiter's
            # per-process cap stalled the next for 10 s, and the open-file
            # limit failed reads.
            loc.owned = owned = []
            loc.end = end = _Sentinel()
            weakref.finalize(end, _thread_ended, weakref.ref(self), owned, os.getpid())
        return loc

    def _own(self, loc: threading.local, conn: Any) -> Any:
        """Notes ``conn`` as the calling thread's, to close when it ends."""
        loc.owned.append(conn)
        return conn

    def _reader(self) -> sqlite3.Connection:
        loc = self._tls()
        if loc.reader is None:
            if not os.path.exists(self.paths.db_b):
                # A reader never creates the database: the arbiter does, at open.
                try:
                    if loc.http is None:
                        loc.http = self._own(loc, self._connect(self.autostart))
                except Unavailable as e:
                    raise Unavailable("%s does not exist and could not be created: %s" % (self.paths.db, e)) from e
                if not os.path.exists(self.paths.db_b):
                    raise Unavailable("%s does not exist (an arbiter answers, but has not created it)" % self.paths.db)
            loc.reader = self._own(loc, self._open_reader())
        return loc.reader

    def _open_reader(self) -> sqlite3.Connection:
        trouble = name_trouble(self.paths.db)
        if trouble is not None:
            raise Refused(trouble)
        uri = "file:%s?mode=ro" % urllib.parse.quote(self.paths.db_b, safe="/")
        try:
            # Each thread uses only its own connection; check_same_thread is
            # off so that its end may close it from whichever thread the
            # collector runs in (never while another thread uses it).
            conn = sqlite3.connect(
                uri,
                uri=True,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as e:
            raise _sql_error(e) from e
        try:
            # busy_timeout first, before anything else reads the file.
            conn.execute("PRAGMA busy_timeout = %d" % int(self.busy_timeout * 1000))
            conn.execute("PRAGMA query_only = 1")
        except sqlite3.Error as e:
            conn.close()
            raise _sql_error(e) from e
        return self._register(conn)


class _Sentinel:
    """Lives as long as a thread's locals (see ``Scribe._tls``)."""


def _thread_ended(db_ref: Any, owned: List[Any], pid: int) -> None:
    """Closes the connections of a thread that has ended, or that opens
    new ones (``close()``, a new generation), in the process that opened
    them only (a fork()ed child leaves the parent's alone)."""
    if os.getpid() != pid:
        return
    db = db_ref()
    for conn in owned:
        if db is not None:
            db._unregister(conn)
        try:
            conn.close()
        except Exception:  # noqa: BLE001  (closing is best effort)
            pass
    owned.clear()
