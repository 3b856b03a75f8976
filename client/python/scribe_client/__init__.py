"""Python client for scribe.

Writes go through the arbiter ``scribed`` (HTTP/JSON on the Unix socket
``<db>.scribe.http.sock``), with an idempotency key and retries; reads
open the SQLite file directly, read-only::

    from scribe_client import Scribe
    db = Scribe("/tmp/app.db")
    r = db.write("INSERT INTO notes(body) VALUES (?) RETURNING id", ["hi"])
    db.wait_for(r["seq"])
    print(db.query("SELECT * FROM notes"))
"""

from .client import Scribe
from .transaction import Transaction
from .errors import (
    Conflict,
    Expired,
    Overloaded,
    ProtocolError,
    Refused,
    ScribeError,
    ShuttingDown,
    SqlError,
    Timeout,
    Unavailable,
)
from .paths import Paths, fnv1a64

__version__ = "0.1.0"

__all__ = [
    "Scribe",
    "Paths",
    "fnv1a64",
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
    "Transaction",
]
