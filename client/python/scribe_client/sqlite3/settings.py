"""The connection's transaction settings, as sqlite3 has them:
``isolation_level``, Python 3.12's ``autocommit``, ``in_transaction``,
``total_changes``, and when a statement begins a transaction."""

import sqlite3 as _std
import sys
from typing import Optional

from .route import Kind

__all__ = ["Settings"]


def isolation_value(value):
    """``value`` as sqlite3 keeps an isolation level (upper case), or its
    error: ``TypeError`` for a type that is not ``str``, ``ValueError``
    for any other word."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("isolation_level must be str or None")
    upper = value.upper()
    if upper not in ("", "DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
        raise ValueError("isolation_level string must be '', 'DEFERRED', 'IMMEDIATE', or 'EXCLUSIVE'")
    return value if _KEEPS_CASE else upper


# Before Python 3.11, sqlite3 keeps the level as it was given.
_KEEPS_CASE = sys.version_info < (3, 11)


class Settings:
    """Mixed into ``Connection`` (ahead of ``sqlite3.Connection``, whose
    properties these replace)."""

    @property
    def isolation_level(self):
        self._open()
        return self._isolation

    @isolation_level.setter
    def isolation_level(self, value):
        value = isolation_value(value)
        with self._lock:
            if self._readonly:
                _std.Connection.isolation_level.__set__(self, value)
            elif value is None and self.in_transaction:
                self._commit()  # as sqlite3: autocommit from now on
            self._isolation = value

    @property
    def autocommit(self):
        """Python 3.12's transaction control: True, False, or
        ``sqlite3.LEGACY_TRANSACTION_CONTROL`` (``isolation_level`` rules)."""
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value):
        legacy = getattr(_std, "LEGACY_TRANSACTION_CONTROL", -1)
        if value not in (True, False, legacy):
            raise ValueError("autocommit must be True, False, or sqlite3.LEGACY_TRANSACTION_CONTROL")
        with self._lock:
            self._set_autocommit(value, legacy)

    def _set_autocommit(self, value, legacy) -> None:
        if self._readonly:
            _std.Connection.autocommit.__set__(self, value)
        elif value is True and self.in_transaction:
            self._commit()  # as sqlite3 does when autocommit turns on
        elif value is legacy and self._always_open() and self._remote.session is None:
            # sqlite3 keeps the transaction it had open: here it begins
            # with the next statement.
            self._begin()
        if value is not False:
            self._snapshot.end()
        self._autocommit = value
        self._sql_ended = False

    @property
    def in_transaction(self) -> bool:
        # With autocommit=False sqlite3 always has one open; the session
        # behind it opens at the first write.
        self._open()
        if self._readonly:
            return _std.Connection.in_transaction.__get__(self)
        return self._remote.session is not None or self._always_open()

    @property
    def total_changes(self) -> int:
        self._open()
        return self._changes

    def _open(self) -> None:
        """sqlite3's check for what a closed connection no longer answers."""
        if self._closed:
            raise _std.ProgrammingError("Cannot operate on a closed database.")

    def _always_open(self) -> bool:
        """autocommit=False: sqlite3 keeps a transaction open (the drop-in
        opens its session at the first write), unless an SQL COMMIT or
        ROLLBACK ended it and neither commit() nor rollback() came since."""
        return self._autocommit is False and not self._sql_ended

    def _opens(self, kind: str, first_word: bool) -> bool:
        """Whether a write of ``kind`` outside a transaction begins one
        first, as sqlite3 would: with ``autocommit=False`` sqlite3 always
        has one open (DDL runs in it too); with an isolation level it
        begins one before a statement whose first word says DML
        (``first_word``, see ``route.begins``). A statement only the
        arbiter can compile commits on its own (see the README)."""
        if self._autocommit is False:
            # A script's statements too: they run in it.
            return not self._sql_ended and kind in (Kind.DML, Kind.WRITE)
        if self._in_script or self._autocommit is True or self._isolation is None:
            return False
        return kind == Kind.DML and first_word

    def _begin(self, mode: Optional[str] = None) -> None:
        """Opens a write session (it begins with its first statement);
        the savepoints of any earlier one are forgotten here, the one
        place every session starts. ``mode`` says what a refused begin
        leaves (see ``Begun``); ``None`` for the implicit begin, which
        ``isolation_level`` decides."""
        self._remote.begin()
        self._savepoints.clear()
        if mode is None:
            mode = Begun.CLOSES if (self._isolation or "").upper() in ("IMMEDIATE", "EXCLUSIVE") else Begun.DEFERRED
        self._begun = mode


class Begun:
    """How a transaction was opened, which decides what its refused begin
    (database is locked past ``timeout``) leaves behind."""

    # A deferred transaction (BEGIN, the implicit one, autocommit=False):
    # it stays open and empty, and its reads go on locally from a
    # snapshot, as sqlite3's do after its first write found the file locked.
    DEFERRED = "deferred"
    # An SQL BEGIN IMMEDIATE or EXCLUSIVE: the program saw it succeed, so
    # the transaction stays open, and every statement of it (reads
    # included) carries the begin again: a statement retried after
    # "locked" must run with the writer held, as after sqlite3's BEGIN
    # IMMEDIATE, or a read-then-write loses updates.
    IMMEDIATE = "immediate"
    # Opened by the very statement that failed (a SAVEPOINT, the implicit
    # BEGIN IMMEDIATE of isolation_level IMMEDIATE): none is left, as in
    # sqlite3.
    CLOSES = "closes"
