"""How a transaction of the drop-in ends on the arbiter: its commit (with
a key, asked again by that key when the answer is lost; refused by
deferred foreign keys, it stays open, as SQLite's COMMIT leaves it), its
rollback, and the deferral of foreign keys SQLite turns off at the end
(a mixin of ``Remote``)."""

from typing import Any, Dict

from .. import errors as scribe_errors
from ..framed import Lost
from ..keys import new_key
from .errors import Expired, translate
from .pacing import Pacer, raise_unless_retryable

__all__ = ["Ending", "NOT_BEGUN"]

#: ``Remote.session`` of a transaction begun here and not yet on the
#: arbiter: its begin goes out with its first statement, in one write, and
#: that statement names the session by ``LATEST`` ("the session just begun
#: on this connection"). A transaction that ends before any statement
#: costs no round trip at all.
NOT_BEGUN = 0


class Ending:
    def _deferral_ended(self) -> None:
        """A write transaction ended: SQLite turns defer_foreign_keys off."""
        self.defer_fks = False
        if self.local_deferral:
            self.local_deferral = False
            if self.on_defer_end is not None:
                self.on_defer_end()

    def commit(self) -> Dict[str, Any]:
        self._deferral_ended()
        session, self.session = self.session, None
        if session == NOT_BEGUN:
            return {}  # nothing ran: nothing to commit
        key = new_key()
        try:
            # Deferred foreign keys still unresolved refuse the commit and
            # leave the transaction open, as SQLite's COMMIT does.
            request = {"session": session, "key": key, "open_on_constraint": True}
            receipt = self._call({"commit": request}, self.scribe.call_timeout)
        except Lost as e:
            if not e.sent:
                # It never reached the arbiter (or was never read, the
                # arbiter stopping): the session ended with its connection.
                raise Expired(
                    "the connection to the arbiter was lost before the commit reached it (%s); "
                    "the transaction was rolled back and nothing of it was written: run it again"
                    % e
                ) from None
            self._drop()
            receipt = self._ask_again(key)
        except scribe_errors.Timeout:
            # The answer was lost: ask by key on a new connection.
            self._drop()
            receipt = self._ask_again(key)
        except scribe_errors.ScribeError as e:
            if e.category == "sql" and not e.rolled_back:
                # Refused by deferred foreign keys: still open (a commit
                # that failed otherwise says ``rolled_back``).
                self.session = session
            raise translate(e) from None
        self._committed(receipt)
        return receipt

    def _committed(self, receipt: Dict[str, Any]) -> None:
        self.last_seq = max(self.last_seq, int(receipt.get("seq") or 0))

    def _ask_again(self, key: str) -> Dict[str, Any]:
        """The outcome of a commit whose answer was lost, asked by its key
        until the arbiter can say (it may be restarting meanwhile)."""
        pacer = Pacer(max(self.wait, 5.0), 0.01, jitter=False)
        while True:
            try:
                return self._call({"commit": {"session": 0, "key": key}}, self.scribe.call_timeout)
            except (Lost, scribe_errors.Timeout) as e:
                err: Exception = e
                self._drop()
            except scribe_errors.ScribeError as e:
                raise_unless_retryable(e)
                err = e
            pacer.pause_or_raise(err, translate(scribe_errors.Timeout(
                "the commit's outcome is unknown (%s); it may or may not have been written" % err)))

    def rollback(self) -> None:
        if self.session is not None:
            # A transaction ends (with none open, sqlite3 says no ROLLBACK
            # and SQLite keeps the deferral).
            self._deferral_ended()
        session, self.session = self.session, None
        if session is None or session == NOT_BEGUN:
            return
        try:
            self._call({"rollback": {"session": session}}, self.scribe.call_timeout)
        except (Lost, scribe_errors.ScribeError):
            pass  # ended already: nothing of it was written either way
