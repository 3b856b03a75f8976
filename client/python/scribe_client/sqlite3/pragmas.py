"""What becomes of the pragmas programs issue when they open a database.

| pragma | treatment |
| --- | --- |
| ``journal_mode=WAL`` | answered ``wal``: the arbiter keeps the file in WAL; another mode is answered ``wal`` too, with a warning |
| ``busy_timeout=N`` | applied to the local reader, and how long a write waits for the arbiter (as the ``timeout`` of ``connect``) |
| ``synchronous=X`` | compared with the arbiter's ``--synchronous``; a difference is warned about once |
| ``foreign_keys=X`` | this connection's setting, as in SQLite (a no-op inside a transaction): every write and begin carries it, and the arbiter checks them accordingly; read, it answers this setting, or the arbiter's until one is set |
| ``wal_autocheckpoint``, ``journal_size_limit`` | the arbiter's checkpointer owns the WAL: applied locally (harmless), a difference from the arbiter's settings warned about once |
| ``cache_size``, ``mmap_size``, ``temp_store``, ``cache_spill``, ``case_sensitive_like``, ``automatic_index``, ``threads``, ``query_only`` | applied to the local reader, where they mean something |
| ``user_version=N``, ``application_id=N`` | written through the arbiter |
| ``optimize`` | nothing (the arbiter's connection is the writer's; run ``ANALYZE`` as a write if needed) |
| ``wal_checkpoint``, with or without a mode | answered ``(0, -1, -1)`` with a warning: the arbiter checkpoints the WAL itself |
| ``locking_mode``, ``secure_delete``, ``auto_vacuum``, ``page_size``, ``recursive_triggers``, ``encoding`` … set | the arbiter's settings (``scribed --pragma``): ignored, warned about once |
| ``defer_foreign_keys=X`` | inside a transaction, the transaction's own (set and read on the arbiter, off again at its end, as in SQLite); said outside one, the next transaction begins with it, and a write outside one turns it off |
| reading any pragma | answered by the local reader; inside a transaction, ``user_version``, ``application_id`` and the schema pragmas (``table_info`` …) are answered by the transaction, which sees its own changes; outside one, while a half-read cursor holds the local reader back, those are read where this connection's last write shows, as its SELECTs are |
"""

import sqlite3 as _std
import warnings
from typing import Any, Optional

from .adapting import adapt as _adapt, encode_params
from .remote import NOT_BEGUN, rows_of
from .route import Kind, here

__all__ = ["ScribeWarning", "Plan", "plan", "run_pragma"]


class ScribeWarning(UserWarning):
    """A setting the program asked for differs from what the arbiter runs."""


# Read inside a transaction, these must see its uncommitted changes.
IN_SESSION = {
    "user_version", "application_id", "schema_version", "table_info", "table_xinfo",
    "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    "foreign_key_check", "integrity_check", "quick_check",
    # The transaction's own setting (SQLite turns it off at its end): set
    # here, the local reader's, it deferred nothing.
    "defer_foreign_keys",
}
# What these answer is the file's (its schema, its header), so they see
# this connection's own writes as a SELECT does.
FILE_READS = (IN_SESSION - {"defer_foreign_keys"}) | {"page_count", "freelist_count"}
LOCAL = {
    "busy_timeout", "cache_size", "mmap_size", "temp_store", "cache_spill",
    "case_sensitive_like", "automatic_index", "threads", "query_only", "foreign_keys",
    "wal_autocheckpoint", "journal_size_limit", "soft_heap_limit", "hard_heap_limit",
    "analysis_limit", "legacy_alter_table", "reverse_unordered_selects", "short_column_names",
    "full_column_names", "count_changes", "empty_result_callbacks", "defer_foreign_keys",
    "read_uncommitted", "cell_size_check", "trusted_schema", "writable_schema",
}
THROUGH_ARBITER = {"user_version", "application_id"}
ARBITER_OWNED = {
    "locking_mode", "secure_delete", "auto_vacuum", "page_size", "recursive_triggers",
    "encoding", "incremental_vacuum", "shrink_memory", "max_page_count",
}


class Plan:
    """Where a pragma runs: ``"local"``, ``"arbiter"``, ``"answer"`` (with
    fixed ``rows``), ``"nothing"``; and a warning to give once."""

    def __init__(self, where: str, rows: Optional[list] = None, warn: Optional[str] = None,
                 columns: Optional[list] = None, sets_foreign_keys: bool = False) -> None:
        self.where = where
        # Run here, it sets the connection's foreign_keys: read back, as
        # SQLite reads the value.
        self.sets_foreign_keys = sets_foreign_keys
        self.rows = rows
        self.warn = warn
        self.columns = columns


_warned = set()


def warn_once(text: str) -> None:
    if text not in _warned:
        _warned.add(text)
        warnings.warn(text, ScribeWarning, stacklevel=4)


def _sync_level(value: Any) -> str:
    v = str(value).strip().strip("'\"").lower()
    return {"0": "off", "1": "normal", "2": "full", "3": "extra"}.get(v, v)


def _setting(answer: dict, name: str) -> Optional[str]:
    """The arbiter's ``--pragma name=value`` in its status ``answer``,
    lower case, if it has one."""
    settings = [str(s).lower() for s in answer.get("settings", [])]
    # The last one given is the one the arbiter applied.
    found = [s.split("=", 1)[1].strip() for s in settings if s.startswith(name + "=")]
    return found[-1] if found else None


def _foreign_keys(value: Optional[str], status: Any, in_transaction: bool,
                  mine: Optional[bool]) -> Plan:
    """``foreign_keys``: this connection's setting, which its writes carry
    to the arbiter (``mine``; ``None`` until set: the arbiter's own
    setting applies, and a read answers it)."""
    if value is not None:
        if in_transaction:
            return Plan("nothing")  # a no-op inside a transaction, in SQLite
        return Plan("local", sets_foreign_keys=True)
    if mine is not None:
        return Plan("answer", rows=[(int(mine),)], columns=["foreign_keys"])
    # Asked each time: an arbiter started again since may check otherwise.
    answer = status(True)
    if not answer:
        return Plan("local")  # asked again next time
    theirs = bool(answer.get("foreign_keys"))
    return Plan("answer", rows=[(int(theirs),)], columns=["foreign_keys"])


def plan(name: str, value: Optional[str], status: Any, in_transaction: bool = False,
         foreign_keys: Optional[bool] = None) -> Plan:
    """The plan for ``PRAGMA name[=value]``; ``status`` is a callable giving
    the arbiter's status (asked only when a comparison needs it),
    ``foreign_keys`` the connection's own setting."""
    if name == "foreign_keys":
        return _foreign_keys(value, status, in_transaction, foreign_keys)
    if name == "wal_checkpoint":
        # The local reader cannot checkpoint (it is read-only: SQLite says
        # "disk I/O error"); the arbiter's checkpointer does it anyway.
        return Plan(
            "answer",
            rows=[(0, -1, -1)],
            columns=["busy", "log", "checkpointed"],
            warn="PRAGMA wal_checkpoint: the arbiter checkpoints the WAL itself (every 500 "
            "pages, when quiet, and TRUNCATE at stop)",
        )
    if name == "optimize":
        # With or without an argument: the statistics are the writer's.
        return Plan("nothing")
    if in_transaction and name in IN_SESSION:
        return Plan("arbiter")
    if value is None:
        return Plan("local")
    if name == "journal_mode":
        wanted = str(value).strip("'\"").lower()
        warn = None
        if wanted != "wal":
            warn = "PRAGMA journal_mode=%s ignored: the arbiter keeps the database in WAL" % wanted
        return Plan("answer", rows=[("wal",)], warn=warn)
    if name == "synchronous":
        theirs = str(status().get("synchronous", "")).lower()
        mine = _sync_level(value)
        warn = None
        if theirs and mine != theirs:
            warn = (
                "PRAGMA synchronous=%s: the arbiter commits with synchronous=%s "
                "(set it with scribed --synchronous)" % (mine, theirs)
            )
        return Plan("nothing", warn=warn)
    if name in THROUGH_ARBITER:
        return Plan("arbiter")
    if name in ARBITER_OWNED:
        return Plan(
            "nothing",
            warn="PRAGMA %s=%s ignored: the arbiter's connection settings are the operator's "
            "(scribed --pragma %s=%s)" % (name, value, name, value),
        )
    warn = None
    if name in ("wal_autocheckpoint", "journal_size_limit"):
        theirs = _setting(status(), name)
        if theirs is None or theirs != str(value).strip("'\"").lower():
            warn = (
                "PRAGMA %s=%s: the arbiter runs with %s=%s; writes follow the arbiter's "
                "(set it with scribed --pragma %s=%s)"
                % (name, value, name, theirs if theirs is not None else "its default", name, value)
            )
    return Plan("local", warn=warn)


def _behind(conn: Any) -> bool:
    """True when the local reader, outside a transaction, cannot see this
    connection's last write (a half-read cursor holds it back)."""
    if conn._remote.session is not None or (conn._autocommit is False and not conn._sql_ended):
        return False
    return conn._fresher() is not None


def run_pragma(conn: Any, cur: Any, sql: str, params: Any, detail) -> Any:
    """Runs a pragma where its plan says: here, on the arbiter, or answered
    from what the arbiter runs with."""
    name, value = detail
    remote = conn._remote
    if name == "foreign_keys":
        # A no-op in a transaction is the connection's own state
        # (autocommit=False keeps one open; a refused begin leaves one),
        # whatever the arbiter has begun.
        in_session = conn.in_transaction
    else:
        # After its begin was refused nothing of the transaction is on the
        # arbiter: its reads are local, as its SELECTs are.
        in_session = remote.session is not None and not (
            remote.session == NOT_BEGUN and conn._reads_here_after_refusal()
        )
    try:
        p = plan(name, value, remote.status, in_session, remote.foreign_keys)
    except _std.Error:
        cur._remote([], [], -1)  # as a cursor whose statement failed
        raise
    if p.warn:
        warn_once(p.warn)
    if p.where == "local":
        if name in FILE_READS and _behind(conn):
            # A read of the file (user_version, table_info …) while a
            # half-read cursor holds the local reader behind this
            # connection's own last write: read where that write shows, as
            # its SELECTs are (see fresh.py).
            return conn._fresh.read(cur, sql, params, conn._last_rowid)
        cur._local()
        _std.Cursor.execute(cur, sql, params)
        if name == "busy_timeout" and value is not None:
            # As SQLite reads the value ('0x10', '5000abc', 'on' alike).
            remote.wait = max(0.0, here(conn, "PRAGMA busy_timeout")[0][0] / 1000.0)
            conn._scribe.starting_wait = remote.wait
        elif name == "query_only" and value is not None:
            conn._query_only = bool(here(conn, "PRAGMA query_only")[0][0])
        if p.sets_foreign_keys:
            remote.foreign_keys = bool(here(conn, "PRAGMA foreign_keys")[0][0])
        elif name == "defer_foreign_keys" and value is not None:
            # Said outside a transaction: the next one begins with it.
            remote.defer_fks = remote.local_deferral = bool(
                here(conn, "PRAGMA defer_foreign_keys")[0][0]
            )
    elif p.where == "arbiter":
        if remote.session is None and conn._opens(Kind.WRITE, False):
            conn._begin()  # autocommit=False: in the open transaction
        if remote.session is not None:
            result = remote.execute(sql, encode_params(params, _adapt))
        else:
            result = remote.write(sql, encode_params(params, _adapt))
        cur._remote(*rows_of(result), -1, result.get("decltypes"))
    elif p.where == "answer":
        cur._remote(p.columns or [name], list(p.rows or ()), -1)
    else:
        cur._remote([], [], -1)
    return cur
