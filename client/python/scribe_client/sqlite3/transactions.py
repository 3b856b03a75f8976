"""How the drop-in's transactions end (``commit()``, ``rollback()``, SQL
``COMMIT``/``ROLLBACK``, the context manager), and what a refused begin
leaves open: a mixin of ``Connection``."""

import sqlite3 as _std
import sys

from .errors import sql_error
from .settings import Begun

__all__ = ["Transactions"]

# sqlite3 refuses `with` on a closed connection from Python 3.11 on.
_ENTER_CHECKS = sys.version_info >= (3, 11)


class Transactions:
    def _usable(self) -> None:
        """The standard module's checks, made before anything is sent to
        the arbiter: the owning thread (unless check_same_thread=False),
        and an open connection (ProgrammingError otherwise)."""
        _std.Connection.cursor(self).close()

    def commit(self) -> None:
        self._usable()
        if self._readonly:
            return _std.Connection.commit(self)
        if self._autocommit is True:
            return  # sqlite3 does nothing: an SQL BEGIN's transaction goes on
        with self._call():
            self._commit()

    def rollback(self) -> None:
        self._usable()
        if self._readonly:
            return _std.Connection.rollback(self)
        if self._autocommit is True:
            return
        with self._call():
            self._rollback()

    def _commit(self) -> None:
        """Ends the transaction, as SQL COMMIT and commit() do."""
        self._after_sql_end("commit")
        self._snapshot.end()
        if self._remote.session is None:
            return
        self._remote.commit()

    def _rollback(self) -> None:
        self._after_sql_end("rollback")
        self._snapshot.end()
        self._remote.rollback()

    def _after_sql_end(self, word: str) -> None:
        """With autocommit=False after an SQL COMMIT or ROLLBACK, sqlite3's
        commit() and rollback() find no transaction and fail, until a BEGIN
        opens one; that one's end reopens the usual transaction."""
        if self._sql_ended:
            if self._remote.session is None:
                raise sql_error(1, "cannot %s - no transaction is active" % word)
            self._sql_ended = False

    def __enter__(self):
        if _ENTER_CHECKS:
            self._open()
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            try:
                self.commit()
            except BaseException:
                self.rollback()
                raise
        else:
            self.rollback()
        return False

    def _begin_refused(self) -> bool:
        """After a statement failed: True when the arbiter refused the
        transaction's begin sent with it (nothing of it ran). What the
        refusal leaves depends on how the transaction opened (``Begun``)."""
        remote = self._remote
        if not remote.begin_was_refused():
            return False
        if self._begun == Begun.CLOSES:
            remote.session = None
            remote.begin_failed = False
            self._snapshot.end()
        return True

    def _reads_here_after_refusal(self) -> bool:
        """A read of a transaction whose begin was refused runs locally, on
        a snapshot, unless an SQL ``BEGIN IMMEDIATE`` opened it (then it
        carries the begin again: see ``Begun``)."""
        return self._remote.begin_failed and self._begun != Begun.IMMEDIATE
