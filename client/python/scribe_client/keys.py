"""Idempotency keys made by this client."""

import itertools
import os
import time

__all__ = ["new_key"]

# A random tag per import, and the process id (a forked child shares the
# tag and the counter, never the pid): the middle of every key, made once
# per process rather than with a getpid() per key.
_TAG = os.urandom(8).hex()
_COUNT = itertools.count(1)
_MIDDLE = ""


def _new_process() -> None:
    global _MIDDLE
    _MIDDLE = ".%x.%s." % (os.getpid(), _TAG)


_new_process()
os.register_at_fork(after_in_child=_new_process)


def new_key() -> str:
    """A fresh idempotency key: unique across processes and time, and
    ordered by time (microseconds first, fixed width), so the keys in the
    arbiter's key table read in the order they were made."""
    return "%016x%s%x" % (time.time_ns() // 1000, _MIDDLE, next(_COUNT))
