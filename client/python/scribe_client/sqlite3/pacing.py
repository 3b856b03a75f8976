"""Waiting for the arbiter as sqlite3 waits for a lock: tries paced
until the connection's ``timeout`` passes, and which refusals are worth
another try."""

import random
import time

from .. import errors as scribe_errors
from .errors import translate

__all__ = ["BUSY", "Pacer", "RETRYABLE", "ms", "raise_unless_retryable"]

RETRYABLE = frozenset({"unavailable", "overloaded", "shutting_down"})


def raise_unless_retryable(e: "scribe_errors.ScribeError") -> None:
    """Raises ``e`` (as the standard class it stands for) unless another
    try may succeed: a stop on purpose is final, and so is a request that
    waited for the writer as long as its ``wait_ms`` allowed (SQLite's
    busy timeout passed: ``database is locked``)."""
    if e.category not in RETRYABLE or getattr(e, "_final", False) or e.sqlite_code == BUSY:
        raise translate(e) from None


BUSY = 5  # SQLITE_BUSY


def ms(seconds: float) -> int:
    """A wait for the arbiter, in whole milliseconds: none below zero (or
    NaN), a century at most (an infinite timeout too)."""
    if not seconds > 0:
        return 0
    return int(min(seconds, CENTURY) * 1000)


CENTURY = 100 * 365 * 86400.0


class Pacer:
    """Pauses between tries: growing, at least what the arbiter asked, at
    most half a second, until ``wait`` seconds have passed (the last try
    at that moment)."""

    def __init__(self, wait: float, first: float, jitter: bool) -> None:
        self.deadline = time.monotonic() + wait
        self.pause = first
        self.jitter = jitter

    def pause_or_raise(self, err: Exception, final: Exception) -> None:
        grow = 1.5 + random.random() if self.jitter else 2.0
        hint = (getattr(err, "retry_after_ms", None) or 0) / 1000.0
        self.pause = max(min(self.pause * grow, 0.5), hint)
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise final from None
        # A pause that would pass the deadline is cut short: the last try
        # is made at it, as SQLite's busy handler makes its last.
        time.sleep(min(self.pause, left))
