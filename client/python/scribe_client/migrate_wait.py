"""Waiting for migrations: as long as they may take (five minutes each,
the arbiter's budget, and others' ahead of them), but not for an arbiter
that stopped answering (frozen, stopped with SIGSTOP): a status must come
back every call timeout, or the wait ends with ``Timeout``."""

from typing import Any, Dict, List

from .errors import ScribeError, Timeout, Unavailable
from .framed import FramedConnection, Lost, connect
from .paths import Paths

__all__ = ["BUDGET", "migrate_on", "migrate_with"]

#: The arbiter's budget for one migration, in seconds.
BUDGET = 300.0


def migrate_on(conn: FramedConnection, paths: Paths, migrations: List[Dict[str, Any]], call_timeout: float) -> Any:
    """Sends ``migrate`` on ``conn`` and waits for its report."""

    def alive() -> None:
        try:
            probe = connect(paths, call_timeout)
            try:
                probe.call({"status": {}}, call_timeout)
            finally:
                probe.close()
        except (Lost, ScribeError) as e:
            raise Timeout(
                "the arbiter stopped answering while the migrations ran (%s); whether they were "
                "applied is unknown: ask again (applied steps are recorded, nothing runs twice)" % e
            ) from None

    wait = call_timeout + BUDGET * (len(migrations) + 1)
    return conn.call_watched({"migrate": {"migrations": migrations}}, wait, call_timeout, alive)


def migrate_with(scribe: Any, listed: List[Dict[str, Any]]) -> Any:
    """One try of ``Scribe.migrate``: on a framed connection of its own
    (auto-starting the arbiter as any call does)."""
    try:
        try:
            conn = connect(scribe.paths, scribe.call_timeout)
        except Unavailable as e:
            if not getattr(e, "missing", False):
                raise
            if scribe.autostart:
                scribe._start()
            elif not scribe._await_starting():
                raise
            conn = connect(scribe.paths, scribe.call_timeout)
        try:
            return migrate_on(conn, scribe.paths, listed, scribe.call_timeout)
        finally:
            conn.close()
    except Lost as e:
        raise Unavailable("connection to the arbiter lost: %s" % e) from None
