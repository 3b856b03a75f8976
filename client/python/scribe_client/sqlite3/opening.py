"""What ``connect()`` is given: the file behind a name or URI, whether it
is to be read only, and the keywords it takes beyond sqlite3's own."""

import os
import sqlite3 as _std
import sys
import time
import urllib.parse
from typing import Any

from ..errors import ScribeError
from .errors import sql_error, translate

__all__ = ["database_path", "opened", "created", "other_name", "EXTRA"]


def created(scribe, path: str, timeout: float) -> None:
    """Has the arbiter make the database at ``path``, which does not exist
    (a reader never creates it; sqlite3 makes no directory either).

    An arbiter may still run for a file deleted under it (a test's set-up
    removing the database): it accepts, stops at that connection, and the
    next start makes the new file. Waited for as a busy database is, at
    most ``timeout`` (and the arbiter's start-up time)."""
    if not os.path.isdir(os.path.dirname(path)):
        raise sql_error(14, "unable to open database file")
    deadline = time.monotonic() + max(timeout, scribe.ready_timeout)
    while True:
        try:
            scribe._start()
        except ScribeError as e:
            raise translate(e) from None
        if os.path.exists(path):
            return
        if time.monotonic() >= deadline:
            raise sql_error(14, "unable to open database file")
        time.sleep(0.01)


def other_name(path: str) -> None:
    """Raises ``OperationalError`` when the file at ``path`` has more than
    one name (hard links) and no arbiter serves it under this one (see
    ``paths.name_trouble``)."""
    from ..paths import name_trouble

    why = name_trouble(path)
    if why is not None:
        raise _std.OperationalError(why)


def database_path(database: Any, uri: bool) -> str:
    """The file behind ``database``; ``NotSupportedError`` for an in-memory
    or temporary database (there is no file to share)."""
    return opened(database, uri)[0]


def opened(database: Any, uri: bool):
    """``(path, read_only)``: the file behind ``database``, and whether its
    URI asks for ``mode=ro``."""
    name = os.fsdecode(database) if not isinstance(database, str) else database
    read_only = False
    if uri and name.startswith("file:"):
        parsed = urllib.parse.urlparse(name)
        query = urllib.parse.parse_qs(parsed.query)
        read_only = query.get("mode") == ["ro"]
        if query.get("mode") == ["memory"]:
            name = ":memory:"
        else:
            # The bytes the URI names (a file name need not be UTF-8).
            name = os.fsdecode(urllib.parse.unquote_to_bytes(os.fsencode(parsed.path)))
    if name in ("", ":memory:"):
        raise _std.NotSupportedError(
            "an in-memory or temporary database cannot be shared through scribe: there is no "
            "file for the arbiter to write; use the standard sqlite3 module for it"
        )
    return os.path.abspath(name), read_only


# Keywords sqlite3's Connection takes beyond these (Python 3.12's
# autocommit), and scribe's own: where the `scribe` CLI is.
EXTRA = ("autocommit", "scribe_bin") if sys.version_info >= (3, 12) else ("scribe_bin",)
