"""Where a connection's reads run outside a transaction: on the local
read-only connection (or the private one while a half-read cursor holds
it behind this connection's last write, see ``fresh.py``), routed afresh
when the schema changed under them; and sqlite3's "no such table" said
at once when the file lacks a table no arbiter is about to make.

A mixin of ``Connection``: it uses the connection's remote side, its
classifier, snapshot and fresh reader, and its ``_route``."""

import sqlite3 as _std
from typing import Any, Optional

from ..client import Scribe
from ..errors import ScribeError
from ..paths import lock_held, read_marker
from ..starting import starting
from .cursor import Cursor
from .errors import sql_error, translate
from .remote import NOT_BEGUN

__all__ = ["Reading"]


class Reading:
    @staticmethod
    def _migrated_in(scribe: Scribe) -> bool:
        """True when no arbiter runs, one may be started, and its settings
        name migrations to apply at open (which may make a table the file
        lacks). Else a missing table is sqlite3's error, at once: starting
        an arbiter for a misspelt name would only say the same."""
        if not scribe.autostart or lock_held(scribe.paths.db_b) is not False:
            return False
        if read_marker(scribe.paths.stop_marker) is not None:
            return False
        try:
            with open(scribe.paths.config, "r", encoding="utf-8", errors="replace") as f:
                return any(line.split("=", 1)[0].strip() == "migrations" for line in f if "=" in line)
        except OSError:
            return False

    def _schema_settled(self) -> None:
        """Once a session that changed the schema has ended (committed,
        its changes are in the file now), what was classified is forgotten
        again."""
        if self._remote.session is None:
            self._schema_in_session = False
            self._classifier.forget()

    def _read_here(self, cur: Cursor, sql: str, params: Any) -> Cursor:
        """Runs a read on the local connection (or, while a half-read
        cursor holds it behind this connection's last write, on the
        private one: see fresh.py)."""
        cur._local()
        if self._remote.defer_fks and self._remote.session is None:
            # Its own transaction ends a deferral said before, as in SQLite.
            self._remote._deferral_ended()
        if (self._autocommit is False and not self._sql_ended) or self._remote.session == NOT_BEGUN:
            self._snapshot.hold()
        elif self._remote.last_seq > self._fresh.seen and self._fresh.behind(self._remote.last_seq):
            return self._fresh.read(cur, sql, params, self._last_rowid)
        try:
            _std.Cursor.execute(cur, sql, params)
        except _std.OperationalError as e:
            return self._reroute(cur, sql, params, e)
        cur._here = True
        cur._lastrowid = self._last_rowid  # this connection's, as in sqlite3
        return cur

    def _fresher(self) -> Optional[_std.Connection]:
        """The private connection while a half-read cursor holds the local
        one behind this connection's last write (see fresh.py), for the
        classifier to compile on; else None."""
        wrote = self._remote.last_seq
        if wrote > self._fresh.seen and self._fresh.behind(wrote):
            return self._snapshot.private()
        return None

    def _reroute(self, cur: Cursor, sql: str, params: Any, e: Exception) -> Cursor:
        """A read failed with ``e``. Another process may have changed the
        schema since it was classified, so that it writes now (a ``DROP
        TABLE IF EXISTS`` of a table created meanwhile): SQLite compiled
        it again when it ran, found the file read-only and wrote nothing.
        It is then classified afresh and routed; any other error is
        raised."""
        if "readonly database" not in str(e) or self._rerouting:
            raise e
        self._classifier.forget()
        self._rerouting = True
        try:
            # Inside the program's call already: its lapse flag stays.
            return self._route(cur, sql, params, False)
        finally:
            self._rerouting = False

    def _no_such_table(self, cur: Cursor, sql: str, params: Any) -> None:
        """Raises sqlite3's "no such table" at once for a statement the
        local connection could not compile because the file lacks a table
        (rather than a round trip that may wait behind a transaction),
        unless an arbiter starting, or the one the statement would start,
        may make it (its migrations at open)."""
        missing = self._classifier.missing_table(sql, params)
        if missing is not None and starting(self._scribe.paths) is not None:
            # The arbiter may be making it (migrations at open): wait
            # for it as for the writer, then let it answer (one
            # stopped meanwhile says so, not "no such table").
            try:
                self._scribe._await_starting()
            except ScribeError as e:
                cur._remote([], [], -1)
                raise translate(e) from None
            missing = None
        elif missing is not None and self._migrated_in(self._scribe):
            # No arbiter runs, and the one the statement starts may
            # make the table (its migrations at open), or say why
            # that failed.
            missing = None
        if missing is not None:
            cur._remote([], [], -1)
            raise sql_error(1, missing)
