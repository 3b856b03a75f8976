"""An arbiter whose start failed (a migration at open that fails, a file
that is not a database) records why in its lock record before it lets the
lock go (``failed_at=<unix ms>``, ``failed=<why>``, ``failed_dir=<dir>``,
``failed_inputs=<fingerprint>``).

Auto-start holds back for ``HOLD`` seconds after it and says why at once,
rather than start one arbiter after another that fails the same way; it
lets go sooner once the database, its settings file or the migrations
changed (the fingerprint of their inode, size and status-change time
differs). ``scribe start`` never holds back. The same rule as the Rust
client's ``scribe_protocol::failed_start``."""

import os
import time
from typing import Optional, Tuple

from .paths import Paths, fnv1a64, lock_held
from .reach import _record

__all__ = ["HOLD", "describe", "holding_back", "inputs", "last"]

#: Seconds auto-start holds back after a failed start.
HOLD = 10.0


def holding_back(paths: Paths) -> Optional[Tuple[str, float]]:
    """``(why, seconds ago)`` of a failed start that holds auto-start back
    now, or None."""
    failed = last(paths)
    return failed if failed is not None and failed[1] < HOLD else None


def last(paths: Paths) -> Optional[Tuple[str, float]]:
    """``(why, seconds ago)`` of the last failed start, whatever its age
    (for a status), unless what it depends on changed since or an arbiter
    holds the lock now."""
    record = _record(paths)
    why, at, then = record.get("failed"), record.get("failed_at", ""), record.get("failed_inputs")
    if not why or not at.isdigit() or not then:
        return None
    if lock_held(paths.db_b) is not False:
        return None
    if inputs(paths, record.get("failed_dir")) != then:
        return None
    return why, max(0.0, time.time() - int(at) / 1000.0)


def describe(paths: Paths, failed: Tuple[str, float]) -> str:
    why, ago = failed
    return (
        "no arbiter is running for %s: its arbiter failed to start %d s ago: %s — auto-start "
        "holds back for %d s after a failed start, unless the database, %s or the migrations "
        "change; `scribe --db %s start` tries again at once"
        % (paths.db, int(ago), why, int(HOLD), paths.config, paths.db)
    )


def inputs(paths: Paths, migrations: Optional[str]) -> str:
    """The fingerprint of what a start depends on: FNV-1a of one line per
    file, ``ino:size:ctime_s.ctime_ns`` or ``-`` when absent, for the
    database, its settings file, then the migrations directory and each
    entry in it in byte order of their names (as the Rust client)."""
    lines = []

    def line(p: bytes) -> None:
        try:
            st = os.stat(p)
        except OSError:
            lines.append(b"-\n")
            return
        ns = st.st_ctime_ns
        lines.append(b"%d:%d:%d.%d\n" % (st.st_ino, st.st_size, ns // 1_000_000_000, ns % 1_000_000_000))

    line(paths.db_b)
    line(os.fsencode(paths.config))
    if migrations:
        d = os.fsencode(migrations)
        line(d)
        try:
            names = sorted(e.name for e in os.scandir(d))
        except OSError:
            names = []
        for name in names:
            line(os.path.join(d, name))
    return "%016x" % fnv1a64(b"".join(lines))
