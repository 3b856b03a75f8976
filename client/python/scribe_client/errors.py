"""Error categories, the same nine as the Rust client and the CLI.

Retryable (the client retries them itself until ``retry_for`` passes):
``unavailable``, ``timeout``, ``overloaded``, ``shutting_down``.
Never retried: ``sql``, ``conflict``, ``refused``, ``protocol``.
``expired`` (a write session ended before its commit: rolled back, nothing
written) is not retried call by call; run the whole transaction again
(``Scribe.run_transaction`` does).
"""

from typing import Any, Dict, Optional

__all__ = [
    "ScribeError",
    "Unavailable",
    "Timeout",
    "Overloaded",
    "ShuttingDown",
    "Conflict",
    "SqlError",
    "Refused",
    "ProtocolError",
    "Expired",
    "RETRYABLE",
    "from_response",
]


class ScribeError(Exception):
    """Any failure of a scribe call.

    Attributes: ``category`` (the arbiter's category name), ``status`` (the
    HTTP status, or None when the failure happened on this side),
    ``statement`` (index of the failing statement in the batch, when
    known), ``sqlite_code`` (SQLite's extended result code, for ``sql``),
    ``retry_after_ms`` (the arbiter's hint, for ``overloaded``),
    ``rolled_back`` (an ``sql`` error after which SQLite rolled the whole
    transaction back: the write session is over).
    """

    category = "error"
    rolled_back = False

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        statement: Optional[int] = None,
        sqlite_code: Optional[int] = None,
        retry_after_ms: Optional[int] = None,
        category: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.statement = statement
        self.sqlite_code = sqlite_code
        self.retry_after_ms = retry_after_ms
        if category is not None:
            self.category = category

    def __repr__(self) -> str:
        return "%s(%r, category=%r, status=%r)" % (
            type(self).__name__,
            self.message,
            self.category,
            self.status,
        )


class Unavailable(ScribeError):
    """No arbiter answered and none could be started (the reason says why)."""

    category = "unavailable"


class Timeout(ScribeError):
    """A deadline passed; a write may or may not have committed (retrying
    with the same key is safe)."""

    category = "timeout"


class Overloaded(ScribeError):
    """The arbiter's queue is full (retry after ``retry_after_ms``), or the
    request waited for the writer past its own ``wait_ms`` (``sqlite_code``
    5, SQLITE_BUSY). Nothing was written."""

    category = "overloaded"


class ShuttingDown(ScribeError):
    """The arbiter is draining before it exits."""

    category = "shutting_down"


class Conflict(ScribeError):
    """An ``expect_rows`` was not met, or an idempotency key was reused for
    a different batch; nothing was written."""

    category = "conflict"


class SqlError(ScribeError):
    """SQLite rejected a statement; nothing was written."""

    category = "sql"


class Refused(ScribeError):
    """Over a limit or against a rule (e.g. ``BEGIN`` in a batch); nothing ran."""

    category = "refused"


class ProtocolError(ScribeError):
    """The request was malformed, or the two sides do not understand each other."""

    category = "protocol"


class Expired(ScribeError):
    """A write session ended before its commit (its lease lapsed, its
    connection was lost): nothing of it was written. Run the whole
    transaction again. (When SQLite itself rolled it back with a
    statement's error, that error is raised instead, ``rolled_back``
    set.)"""

    category = "expired"


_BY_CATEGORY = {
    cls.category: cls
    for cls in (
        Unavailable,
        Timeout,
        Overloaded,
        ShuttingDown,
        Conflict,
        SqlError,
        Refused,
        ProtocolError,
        Expired,
    )
}

_BY_STATUS = {
    400: ProtocolError,
    403: Refused,
    409: Conflict,
    410: Expired,
    413: Refused,
    422: SqlError,
    429: Overloaded,
    503: Unavailable,
    504: Timeout,
}

RETRYABLE = frozenset({"unavailable", "timeout", "overloaded", "shutting_down"})


def _int_or_none(v: Any) -> Optional[int]:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def from_response(
    status: int, body: Optional[Dict[str, Any]], retry_after: Optional[str] = None
) -> ScribeError:
    """The exception for an HTTP error answer: by the body's ``category``
    when there is one, else by the status code."""
    body = body if isinstance(body, dict) else {}
    category = body.get("category")
    cls = _BY_CATEGORY.get(category) if isinstance(category, str) else None
    if cls is None:
        cls = _BY_STATUS.get(status)
        if cls is None:
            cls = ProtocolError if 400 <= status < 500 else Unavailable
    message = body.get("message")
    if not isinstance(message, str) or not message:
        message = "HTTP %d from the arbiter" % status
    retry_after_ms = _int_or_none(body.get("retry_after_ms"))
    if retry_after_ms is None and retry_after:
        try:
            retry_after_ms = int(float(retry_after) * 1000)
        except ValueError:
            retry_after_ms = None
    err = cls(
        message,
        status=status,
        statement=_int_or_none(body.get("statement")),
        sqlite_code=_int_or_none(body.get("sqlite_code")),
        retry_after_ms=retry_after_ms,
    )
    sqlite_message = body.get("sqlite_message")
    if isinstance(sqlite_message, str):
        err.sqlite_message = sqlite_message  # SQLite's own words
    if body.get("rolled_back") is True:
        err.rolled_back = True
    return err
