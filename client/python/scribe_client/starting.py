"""An arbiter that holds the lock but serves nobody yet: it is opening
the database or applying its migrations at open (``scribed --migrations``),
which may take minutes. Its lock record says so (``starting=<phase>``, and
no sockets) until its sockets are bound.

A caller waits for it as a write waits behind the writer: up to its own
wait, then ``Overloaded`` with SQLite's ``SQLITE_BUSY`` (the drop-in
raises "database is locked"), naming what it does."""

import time
from typing import Callable, Optional, Tuple

from .errors import Overloaded
from .paths import Paths, lock_held
from .reach import _record

__all__ = ["OPENING", "busy_error", "starting", "wait_starting"]


def starting(paths: Paths) -> Optional[Tuple[int, str, float]]:
    """``(pid, phase, seconds since it started)`` of the arbiter holding
    the lock, when its record says it is starting."""
    record = _record(paths)
    phase = record.get("starting")
    pid = record.get("pid", "")
    if not phase or record.get("socket") or not pid.isdigit():
        return None
    # The record outlives a killed holder: the lock does not.
    if lock_held(paths.db_b) is not True:
        return None
    started = record.get("started", "")
    since = max(0.0, time.time() - int(started)) if started.isdigit() else 0.0
    return int(pid), phase, since


#: The phase of an arbiter that only opens the database (the readiness
#: deadline applies to it, not the caller's wait for the writer).
OPENING = "opening the database"


def wait_starting(paths: Paths, ready: float, busy: float, accepts: Callable[[], bool]) -> bool:
    """Waits for a starting arbiter to accept: while it opens the database
    up to ``ready`` seconds (or ``busy`` when longer), while it does what
    holds the writer (migrations at open) up to ``busy``. True once it
    accepts, False at once when none is starting (any more). Raises
    ``Overloaded`` (``sqlite_code`` 5) past the wait."""
    began = time.monotonic()
    pause = 0.002
    while True:
        if accepts():
            return True
        now = starting(paths)
        if now is None:
            return False
        pid, phase, since = now
        limit = max(ready, busy) if phase == OPENING else busy
        waited = time.monotonic() - began
        if waited >= limit:
            raise busy_error(now, waited)
        time.sleep(min(pause, max(0.0, limit - waited)))
        pause = min(pause * 2, 0.05)


def busy_error(now: Tuple[int, str, float], waited: float) -> Overloaded:
    """The error of a caller that waited ``waited`` seconds for the
    starting arbiter ``now``."""
    pid, phase, since = now
    e = Overloaded(
        "database is busy: the arbiter (pid %d) is still starting, %s (for %d s); "
        "waited %d ms for it to serve; nothing was written" % (pid, phase, since, waited * 1000),
        sqlite_code=5,
    )
    # SQLite's own words, which the drop-in raises, as for any wait for the
    # writer that ran out.
    e.sqlite_message = "database is locked"  # type: ignore[attr-defined]
    # The caller's whole wait is spent: retrying would wait again.
    e._final = True  # type: ignore[attr-defined]
    return e
