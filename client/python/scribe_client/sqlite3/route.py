"""What a statement does, as SQLite itself says when it compiles it on the
local read-only connection: an authorizer records the actions it asks
for (``EXPLAIN`` compiles the statement without running it). No SQL text
is parsed here beyond what sqlite3 itself looks at: the first word, past
blanks and comments (``begins``, ``nothing``).
"""

import sqlite3 as _std
import sys
from typing import Any, Callable, Dict, Optional, Set, Tuple

from .binding import Asked, named, shape
from .first_word import begins, nothing
from .vacuum import vacuum_into

__all__ = ["Kind", "Classifier", "here"]


class Kind:
    READ = "read"
    WRITE = "write"
    DML = "dml"  # a write that only inserts, updates or deletes rows
    BEGIN = "begin"
    COMMIT = "commit"
    ROLLBACK = "rollback"
    SAVEPOINT = "savepoint"
    RELEASE = "release"
    ROLLBACK_TO = "rollback_to"
    PRAGMA = "pragma"
    ATTACH = "attach"
    UNKNOWN = "unknown"  # the local connection could not compile it
    EMPTY = "empty"  # blanks, comments, semicolons: nothing to run


_ROW_WRITES = {_std.SQLITE_INSERT, _std.SQLITE_UPDATE, _std.SQLITE_DELETE}
_SCHEMA_WRITES = {
    _std.SQLITE_CREATE_INDEX, _std.SQLITE_CREATE_TABLE, _std.SQLITE_CREATE_TEMP_INDEX,
    _std.SQLITE_CREATE_TEMP_TABLE, _std.SQLITE_CREATE_TEMP_TRIGGER, _std.SQLITE_CREATE_TEMP_VIEW,
    _std.SQLITE_CREATE_TRIGGER, _std.SQLITE_CREATE_VIEW, _std.SQLITE_DROP_INDEX,
    _std.SQLITE_DROP_TABLE, _std.SQLITE_DROP_TEMP_INDEX, _std.SQLITE_DROP_TEMP_TABLE,
    _std.SQLITE_DROP_TEMP_TRIGGER, _std.SQLITE_DROP_TEMP_VIEW, _std.SQLITE_DROP_TRIGGER,
    _std.SQLITE_DROP_VIEW, _std.SQLITE_ALTER_TABLE, _std.SQLITE_REINDEX, _std.SQLITE_ANALYZE,
    _std.SQLITE_CREATE_VTABLE, _std.SQLITE_DROP_VTABLE,
}
_SCHEMA_TABLES = {"sqlite_master", "sqlite_temp_master", "sqlite_schema", "sqlite_temp_schema"}


class Classifier:
    """Classifies statements on ``conn`` (the local read-only connection),
    remembering each text's answer."""

    def __init__(self, conn: _std.Connection) -> None:
        self.conn = conn
        self.cache: Dict[Tuple[str, Any], Tuple[str, Any]] = {}
        # Texts that are plain reads, whatever their parameters (sqlite3
        # runs them here and checks the parameters itself).
        self.reads: Set[str] = set()
        # (text, name): whether the text leaves that parameter name unused.
        self.unused_names: Dict[Tuple[str, str], bool] = {}
        # Text: the names it binds, in order (None: it does not compile here).
        self.asked_names: Dict[str, Optional[list]] = {}
        # The schema may have changed since this connection last read it.
        self.stale = False
        # Virtual tables connected while compiling (see `_compile`).
        self._connects = 0
        # Why the last statement that did not compile here did not.
        self.not_compiled = ""
        # Text: the functions it calls (only texts that call any).
        self.called: Dict[str, frozenset] = {}
        # A connection that sees this connection's own last write, when the
        # local one cannot yet (see fresh.py); None when it can.
        self.fresher: Callable[[], Optional[_std.Connection]] = lambda: None
        # Takes the program's progress handler and length limit off a
        # connection for a compile, returning what puts them back (None:
        # nothing to put back). See Connection._quiet.
        self.quiet: Callable[[_std.Connection], Optional[Callable[[], None]]] = lambda _: None

    def forget(self) -> None:
        """The schema may have changed (a write other than rows went
        through the arbiter): every answer is forgotten, and the local
        connection reads the schema again before its next compile. An
        ``EXPLAIN`` never looks at the file, so without that it would go
        on compiling against the tables it knew (a ``DROP TABLE IF EXISTS``
        of a table created since would pass for a read)."""
        self.cache.clear()
        self.reads.clear()
        self.unused_names.clear()
        self.asked_names.clear()
        self.called.clear()
        self.stale = True

    def kind_only(self, sql: str) -> str:
        """The statement's kind whatever its parameters (SQLite asks the
        authorizer while it compiles, before any are bound), for an
        ``executemany`` given no parameter sets."""
        if nothing(sql):
            return Kind.EMPTY
        for (text, _), (kind, _) in self.cache.items():
            if text == sql:
                return kind
        # A text of its own: sqlite3 reuses a statement it compiled before
        # (this one with parameters, say) without compiling it again, and
        # a wrong count fails before it would.
        seen = self._compile(sql + "\n", (), bindings_matter=False)
        kind = Kind.UNKNOWN if seen is None else _kind(seen)[0]
        # Remembered: compiled again, the text comes from sqlite3's own
        # statement cache, which the authorizer never hears (nothing seen,
        # and the wrong count of bindings would be raised).
        if seen is not None:
            self.cache[(sql, _NO_SETS)] = (kind, None)
        return kind

    def classify(self, sql: str, params: Any) -> Tuple[str, Any]:
        """``(kind, detail)``; for a pragma the detail is ``(name, value)``,
        for a savepoint its name, for DML whether it ``begins``."""
        # The parameters' shape is part of the key: a text seen with one
        # count of parameters is checked again with another, so a wrong
        # count fails here, as sqlite3 says it, before any write is sent.
        key = (sql, shape(params))
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        if nothing(sql):
            # Only blanks, comments or semicolons: SQLite has no statement
            # to compile (EXPLAIN of it fails) and sqlite3 runs nothing.
            return (Kind.EMPTY, None)
        # None as given: sqlite3 refuses it as parameters, as it does here.
        seen = self._compile(sql, params, bindings_matter=True)
        if seen is None:
            # A read left half done holds the local connection on the file
            # as it was, before this connection's own DDL, say: sqlite3's
            # connection would see its own table. Compiled where the file
            # is seen as it is now.
            fresher = self.fresher()
            if fresher is not None:
                seen = self._compile(sql, params, True, fresher)
        if seen is None:
            return (Kind.UNKNOWN, None)
        out = _kind(seen)
        if not seen and vacuum_into(sql):
            # A copy of the file into another: it only reads this one
            # (SQLite runs it on a read-only connection), as a backup.
            out = (Kind.READ, None)
        if out[0] == Kind.DML:
            out = (Kind.DML, begins(sql))
        if len(self.cache) > 512:
            self._clear()
        self.cache[key] = out
        if out[0] == Kind.READ:
            self.reads.add(sql)
        return out

    def unused_in(self, sql: str, params: Any):
        """``unused`` for ``sql`` and the set ``params``, as
        ``adapt.named_set`` asks it."""
        return lambda name: self.unused(sql, params, name)

    def unused(self, sql: str, params: Any, name: str) -> bool:
        """True when ``sql`` binds no parameter ``name``: it compiles here
        with the named set ``params`` less that name (sqlite3 then never
        looks at its value)."""
        key = (sql, name)
        known = self.unused_names.get(key)
        if known is not None:
            return known
        rest = {k: None for k in params.keys() if str(k) != name}
        try:
            answer = self._compile(sql, rest, bindings_matter=True) is not None
        except _std.ProgrammingError:
            answer = False  # it does: "You did not supply a value for binding parameter"
        if len(self.unused_names) > 512:
            self.unused_names.clear()
        self.unused_names[key] = answer
        return answer

    def asked(self, sql: str, params: Any) -> Optional[list]:
        """The names ``sql`` binds, when ``params`` is a dict subclass
        (sqlite3 looks such a set up name by name, so that its
        ``__missing__`` answers a name it lacks); ``None`` for a plain
        dict, or when ``sql`` does not compile here (its keys are sent)."""
        if type(params) is dict or not isinstance(params, dict):
            return None
        if sql in self.asked_names:
            return self.asked_names[sql]
        recorder = Asked()
        compiled = self._compile(sql, recorder, bindings_matter=True) is not None
        # Once each: a statement compiled twice (see _compile) asked twice.
        names = list(dict.fromkeys(recorder.names)) if compiled else None
        if len(self.asked_names) > 512:
            self.asked_names.clear()
        self.asked_names[sql] = names
        return names

    def order_of(self, sql: str) -> Callable[[], Optional[list]]:
        """The names ``sql`` binds, in its order, when asked (``None`` when
        it does not compile here): to name a value it cannot bind."""

        def names() -> Optional[list]:
            recorder = Asked()
            if self._compile(sql, recorder, bindings_matter=True) is None:
                return None
            return list(dict.fromkeys(recorder.names))

        return names

    def missing_table(self, sql: str, params: Any) -> Optional[str]:
        """For a statement that does not compile here: SQLite's "no such
        table" when that is why, even with the schema read again (outside
        a transaction the arbiter has no table the file lacks, so it
        would say the same); else None, and the arbiter decides (a
        function, a syntax or a module only its SQLite has)."""
        if not self.not_compiled.startswith("no such table: "):
            return None
        self.stale = True
        try:
            if self._compile(sql, params if params is not None else (), bindings_matter=True) is not None:
                return None
        except _std.ProgrammingError:
            return None
        return self.not_compiled if self.not_compiled.startswith("no such table: ") else None

    def _compile(
        self, sql: str, params: Any, bindings_matter: bool, conn: Optional[_std.Connection] = None
    ) -> Optional[list]:
        """What SQLite's authorizer heard while ``EXPLAIN sql`` compiled on
        ``conn`` (the local connection unless given); ``None`` when it
        could not compile it. A ``ProgrammingError`` (several statements, a
        wrong count of parameters) is raised as sqlite3 raises it, but a
        wrong count only when ``bindings_matter``."""
        if conn is None:
            conn = self.conn
            fresh = self.stale
            self.stale = False
        else:
            fresh = True  # another connection: its schema read again too
        if fresh:
            try:
                # Reading a table checks the schema's cookie, and a changed
                # schema is read again.
                here(conn, "SELECT count(*) FROM sqlite_master WHERE 0")
            except _std.Error:
                pass
        seen: list = []

        def watch(action, arg1, arg2, db, source):
            seen.append((action, arg1, arg2))
            return _std.SQLITE_OK

        def explain(text: str) -> None:
            try:
                _explain(conn, text, params)
            except _std.ProgrammingError as e:
                # sqlite3 says "Incorrect number of bindings supplied…".
                if bindings_matter or not seen or "bindings" not in str(e):
                    raise

        _std.Connection.set_authorizer(conn, watch)
        restore = self.quiet(conn)
        try:
            explain("EXPLAIN " + sql)
            if _connected_a_virtual_table(seen) and not any(a in _SCHEMA_WRITES for a, _, _ in seen):
                # The authorizer also heard the statements the module ran
                # to connect the table (FTS5's PRAGMA data_version, the
                # r-tree's reads and writes of its shadow tables): compiled
                # again, connected now, only the statement speaks. A text
                # of its own, as sqlite3's cache would answer the first.
                # DDL is a write whatever else was heard (a pragma counts
                # only as the first action: see _kind), and is not compiled
                # again: each second text would take a place in sqlite3's
                # statement cache for nothing.
                seen.clear()
                self._connects += 1
                explain("EXPLAIN /* %d */ %s" % (self._connects, sql))
        except (_std.ProgrammingError, _std.InterfaceError):
            # As sqlite3 raises it (see explain); before 3.10 a value it
            # cannot bind is an InterfaceError.
            raise
        except _std.Error as e:
            if not _compile_error(e):
                # Not a statement only the arbiter could compile (the file
                # is locked or damaged, memory ran out): its error, raised.
                raise
            self.not_compiled = str(e)
            return None
        finally:
            _std.Connection.set_authorizer(conn, _NO_AUTHORIZER)
            if restore is not None:
                restore()
        self._heard_calls(sql, seen)
        return seen

    def _heard_calls(self, sql: str, seen: list) -> None:
        """Remembers the functions ``sql`` calls (the authorizer names
        them), for ``calls``."""
        names = frozenset((a2 or "").lower() for a, _, a2 in seen if a == _std.SQLITE_FUNCTION)
        if names:
            if len(self.called) > 512:
                # With the answers: a text still answered from the cache
                # is not compiled again, and its calls must stay known.
                self._clear()
            self.called[sql] = names

    def _clear(self) -> None:
        """Forgets the answers kept per text, together."""
        self.cache.clear()
        self.reads.clear()
        self.called.clear()

    def calls(self, sql: str) -> frozenset:
        """The functions ``sql`` calls, as its compile here heard them."""
        return self.called.get(sql, frozenset())


def _explain(conn: _std.Connection, text: str, params: Any) -> None:
    # A plain cursor: the drop-in connection's own would route the EXPLAIN.
    cur = _std.Cursor(conn)
    try:
        _std.Cursor.execute(cur, text, params)
    finally:
        cur.close()


def _compile_error(e: Exception) -> bool:
    """Whether ``e`` says the statement does not compile here (SQLite's
    plain SQLITE_ERROR: a table, column, function or module this
    connection lacks, syntax its SQLite does not know), which the arbiter
    then decides; any other code (interrupted, too big, locked, corrupt)
    is the statement's error, raised."""
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF == 1
    # Before Python 3.11 the code is not given: what the others say.
    text = str(e)
    return not text.startswith(_NOT_COMPILE_ERRORS)


# SQLite's words for the codes that are not SQLITE_ERROR, as _compile may
# meet them (Python 3.9 and 3.10 give no code).
_NOT_COMPILE_ERRORS = (
    "interrupted",
    "string or blob too big",
    "database is locked",
    "database table is locked",
    "database schema is locked",
    "disk I/O error",
    "file is not a database",
    "database disk image is malformed",
    "out of memory",
    "attempt to write a readonly database",
)


def _connected_a_virtual_table(seen: list) -> bool:
    """SQLite may have connected a virtual table while compiling: its own
    upkeep of ``sqlite_master`` (an UPDATE of its rows) was heard, which
    a virtual table's connect makes, and DDL too."""
    return any(a == _std.SQLITE_UPDATE and (arg1 or "").lower() in _SCHEMA_TABLES for a, arg1, _ in seen)


# The shape key of a text classified without parameters (``kind_only``).
_NO_SETS = "no parameter sets"


def here(conn: _std.Connection, sql: str) -> list:
    """The rows of ``sql`` on the local connection, run by sqlite3's own
    cursor (this connection's would route it)."""
    cur = _std.Cursor(conn)
    try:
        return _std.Cursor.execute(cur, sql).fetchall()
    finally:
        cur.close()


def _allow(*_: Any) -> int:
    return _std.SQLITE_OK


# Before 3.11 sqlite3 took None as a callback (every statement after was
# "not authorized"); there, one that allows everything stands in. SQLite
# asks it only while compiling, and sqlite3 caches compiled statements.
_NO_AUTHORIZER = None if sys.version_info >= (3, 11) else _allow


def _kind(seen) -> Tuple[str, Optional[Any]]:
    if not seen:
        # Every read asks for SQLITE_SELECT; what asks for nothing at all
        # (VACUUM, a bare REINDEX) changes the file: the arbiter decides.
        return (Kind.WRITE, None)
    kind = Kind.READ
    for action, arg1, arg2 in seen:
        if action == _std.SQLITE_TRANSACTION:
            return ({"BEGIN": Kind.BEGIN, "COMMIT": Kind.COMMIT}.get(arg1, Kind.ROLLBACK), None)
        if action == _std.SQLITE_SAVEPOINT:
            return ({"BEGIN": Kind.SAVEPOINT, "RELEASE": Kind.RELEASE}.get(arg1, Kind.ROLLBACK_TO), arg2)
        if action in (_std.SQLITE_ATTACH, _std.SQLITE_DETACH):
            return (Kind.ATTACH, None)
        if action == _std.SQLITE_PRAGMA:
            if (action, arg1, arg2) == seen[0]:
                return (Kind.PRAGMA, ((arg1 or "").lower(), arg2))
            continue  # a pragma some other statement runs (a module's)
        if action in _SCHEMA_WRITES:
            kind = Kind.WRITE
        elif action in _ROW_WRITES:
            if (arg1 or "").lower() in _SCHEMA_TABLES:
                kind = Kind.WRITE  # SQLite's own upkeep for DDL
            elif kind == Kind.READ:
                kind = Kind.DML
    return (kind, None)
