"""Idempotency keys made by this client."""

import itertools
import os
import time

__all__ = ["new_key"]

# A random tag per import, and the process id (a forked child shares the
# tag and the counter, never the pid).
_TAG = os.urandom(8).hex()
_COUNT = itertools.count(1)


def new_key() -> str:
    """A fresh idempotency key: unique across processes and time, and
    ordered by time (microseconds first, fixed width), so the keys in the
    arbiter's key table read in the order they were made."""
    return "%016x.%x.%s.%x" % (time.time_ns() // 1000, os.getpid(), _TAG, next(_COUNT))
