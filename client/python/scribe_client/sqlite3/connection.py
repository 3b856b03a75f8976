"""``Connection`` of the drop-in: a real ``sqlite3.Connection`` opened
read-only on the database, which routes each statement.

- reads outside a transaction run on it, locally;
- writes outside a transaction are one-statement batches through the
  arbiter (retried safely until ``timeout`` passes, as a busy timeout);
- a transaction (begun implicitly before a DML statement, as the
  ``isolation_level`` rules say, or explicitly with ``BEGIN``) is a write
  session on the arbiter: every statement in it, reads included, runs
  there and sees its own writes; ``commit()`` and ``rollback()`` end it.
"""

import contextlib
import os
import re
import sqlite3 as _std
import threading
import urllib.parse
from typing import Any

from ..client import Scribe
from .adapting import adapt as _adapt, encode_params
from .cursor import Cursor
from .errors import Expired, sql_error
from .many import run_many
from .pragmas import run_pragma
from .remote import NOT_BEGUN, Remote, rows_of
from .binding import UNSUPPORTED, parameters_fit
from .first_word import begins
from .route import Classifier, Kind, here
from . import counts, readonly
from .fresh import Fresh
from .local import LocalOnly
from .reading import Reading
from .opening import EXTRA, created, opened, other_name
from .savepoints import Savepoints
from .settings import Begun, Settings, isolation_value
from .snapshot import Snapshot
from .split import split
from .transactions import Transactions

__all__ = ["Connection"]


# A BEGIN that takes the writer at once in sqlite3: here its begin goes
# with the transaction's first statement (see settings.Begun.IMMEDIATE).
_IMMEDIATE = re.compile(r"\s*BEGIN\s+(IMMEDIATE|EXCLUSIVE)\b", re.IGNORECASE)

class Connection(Settings, Transactions, Reading, LocalOnly, _std.Connection):
    """A connection to a database that scribe's arbiter writes."""

    _closed = False  # set by close(), even when __init__ failed part way
    _lock = threading.RLock()  # each connection's own, once __init__ ran

    def __init__(self, database, timeout=5.0, detect_types=0, isolation_level="",
                 check_same_thread=True, factory=None, cached_statements=128, uri=False,
                 **extra):
        # One statement or transaction end at a time, as SQLite's own mutex
        # serializes a connection threads share (check_same_thread=False):
        # the routing below keeps state of its own, and two threads
        # classifying at once deadlocked (one in set_authorizer, holding
        # the GIL, waiting for SQLite's mutex; the other's authorizer
        # callback, holding that mutex, waiting for the GIL).
        self._lock = threading.RLock()
        for key in extra:
            if key not in EXTRA:
                raise TypeError("'%s' is an invalid keyword argument for Connection()" % key)
        isolation_level = isolation_value(isolation_level)
        path, self._readonly = opened(database, uri)
        scribe_bin = extra.get("scribe_bin") or os.environ.get("SCRIBE_BIN")
        self._scribe = Scribe(path, scribe_bin=scribe_bin, retry_for=float(timeout))
        # An arbiter holding the writer as it starts (migrations at open)
        # is waited for as any writer: `timeout`, then "database is locked".
        self._scribe.starting_wait = float(timeout)
        if not os.path.exists(path) and not self._readonly:
            created(self._scribe, path, float(timeout))
        other_name(path)
        ro = "file:%s?mode=ro" % urllib.parse.quote(os.fsencode(path))
        super().__init__(ro, timeout=timeout, detect_types=detect_types, isolation_level=None,
                         check_same_thread=check_same_thread, cached_statements=cached_statements,
                         uri=True)
        self._isolation = isolation_level
        self._detect_types = detect_types  # for rows the arbiter answers (cursor.py)
        self._autocommit = extra.get("autocommit", getattr(_std, "LEGACY_TRANSACTION_CONTROL", -1))
        self._remote = Remote(self._scribe, wait=float(timeout))
        self._snapshot = Snapshot(self, ro)  # autocommit=False: see snapshot.py
        self._remote.on_begun = self._snapshot.check
        # The local reader answers PRAGMA defer_foreign_keys outside a
        # transaction: off again once one has ended, as SQLite's.
        self._remote.on_defer_end = lambda: here(self, "PRAGMA defer_foreign_keys=OFF")
        self._fresh = Fresh(self, self._snapshot.private)  # see fresh.py
        # Shared by threads, it classifies on a connection of its own:
        # compiling with the authorizer set, SQLite's mutex is held while
        # the callback waits for the GIL, and another thread holding the
        # GIL while it reads rows here (each column read takes that mutex)
        # would wait for the mutex for ever. Only classifying, under the
        # lock, touches the twin.
        self._twin = None
        if not check_same_thread and not self._readonly:
            self._twin = _std.connect(ro, uri=True, timeout=timeout, isolation_level=None,
                                      check_same_thread=False)
        self._classifier = Classifier(self._twin or self)
        self._classifier.fresher = self._fresher
        self._classifier.quiet = self._quiet
        # The program's progress handler and length limit, for _quiet.
        self._progress = None
        self._length_limit = None
        self._changes = 0
        self._query_only = False  # PRAGMA query_only, as the local connection has it
        self._last_rowid = 0
        self._last_changes = 0
        self._functions = set()
        self._extensions = False
        self._savepoints = Savepoints()
        self._begun = Begun.DEFERRED  # how the transaction opened (settings.Begun)
        self._sql_ended = False  # see _always_open
        self._lapsed = self._lapsed_before = False  # see _call
        self._in_script = False
        # A session changed the schema (forget it again once it ends); a
        # read is being routed again (see _read_here).
        self._schema_in_session = False
        self._rerouting = False
        if not self._readonly:
            counts.install(self)
        else:
            # sqlite3's own transaction control, on the only connection.
            self.isolation_level = isolation_level
            if "autocommit" in extra:
                self.autocommit = extra["autocommit"]

    # ---------------------------------------------------------- statements

    def cursor(self, factory=None):
        return super().cursor(factory or Cursor)

    def execute(self, sql, parameters=()):
        return self._run(_std.Connection.cursor(self, Cursor), sql, parameters)

    def executemany(self, sql, parameters):
        return self.cursor().executemany(sql, parameters)

    def executescript(self, sql_script):
        return self.cursor().executescript(sql_script)

    @contextlib.contextmanager
    def _call(self):
        """One call of the program's on this connection, under its lock.
        When the last call raised Expired (the arbiter ended the
        transaction: its lease lapsed), ``_lapsed_before`` says so for
        this one: the ROLLBACK a program's error handling says next has
        nothing left to do, and is no second error hiding the first."""
        with self._lock:
            self._lapsed_before, self._lapsed = self._lapsed, False
            try:
                yield
            except Expired:
                self._lapsed = self._remote.session is None
                raise

    def _run(self, cur: Cursor, sql: str, params: Any, many: bool = False) -> Cursor:
        # _call written out: as a context manager it cost every execute,
        # local reads included, about 2 µs more.
        with self._lock:
            self._lapsed_before, self._lapsed = self._lapsed, False
            try:
                return self._route(cur, sql, params, many)
            except Expired:
                self._lapsed = self._remote.session is None
                raise

    def _route(self, cur: Cursor, sql: str, params: Any, many: bool) -> Cursor:
        # The common case first, with as little Python as it takes: a read
        # outside a transaction, of a statement seen before (through
        # Connection.execute or a cursor alike).
        if self._readonly:
            return readonly.run(cur, sql, params)
        if self._schema_in_session:
            self._schema_settled()
        if not many and self._remote.session is None and sql in self._classifier.reads:
            return self._read_here(cur, sql, params)
        if not isinstance(sql, str):
            raise TypeError("execute() argument 1 must be str, not %s" % type(sql).__name__)
        try:
            kind, detail = self._classifier.classify(sql, params)
            if type(params) is not tuple and not parameters_fit(params):
                raise UNSUPPORTED("parameters are of unsupported type")
        except (_std.ProgrammingError, _std.InterfaceError, OverflowError, UNSUPPORTED) as e:
            # Parameters that do not fit (a wrong count, an int out of
            # range, a container sqlite3 does not take): sqlite3 has begun
            # the transaction a DML statement begins before it binds them
            # (a begin sent with the next statement here: nothing holds the
            # writer meanwhile). (With autocommit=False the transaction is
            # open already.) What fails before binding (a NUL in the text,
            # two statements) begins nothing, as in sqlite3.
            # As sqlite3 leaves a cursor whose statement failed: its last
            # statement reset, no rows.
            cur._remote([], [], -1)
            said = str(e).lower()
            if not isinstance(e, OverflowError) and "bind" not in said and "parameter" not in said:
                raise
            if (
                not many and self._remote.session is None and self._autocommit is not False
                and self._opens(Kind.DML, begins(sql))
            ):
                self._begin()
            raise
        if kind == Kind.UNKNOWN and self._remote.session is None:
            self._no_such_table(cur, sql, params)
        if kind == Kind.EMPTY:
            # Nothing to run, in a transaction or not: the local connection
            # answers as sqlite3 (a wrong count of bindings included, and
            # the cursor's lastrowid left as it was).
            cur._local()
            _std.Cursor.execute(cur, sql, params)
            return cur
        session = self._remote.session
        if kind == Kind.ATTACH:
            cur._remote([], [], -1)
            raise _std.NotSupportedError(
                "ATTACH and DETACH are not supported: the arbiter writes one database file; "
                "open the other database with a connection of its own"
            )
        if kind == Kind.PRAGMA:
            run_pragma(self, cur, sql, params, detail)
            cur._lastrowid = self._last_rowid  # after every statement, in sqlite3
            return cur
        if kind == Kind.BEGIN:
            # After a begin that failed (sent with the first statement),
            # BEGIN may be said again, as after sqlite3's failed BEGIN.
            if self._always_open() or (
                session is not None and not (session == NOT_BEGUN and self._remote.begin_failed)
            ):
                raise sql_error(1, "cannot start a transaction within a transaction")
            self._begin(Begun.IMMEDIATE if _IMMEDIATE.match(sql) else Begun.DEFERRED)
            cur._remote([], [], -1)
            cur._lastrowid = self._last_rowid
            return cur
        if kind in (Kind.COMMIT, Kind.ROLLBACK):
            lapsed = kind == Kind.ROLLBACK and self._lapsed_before
            if session is None and not self._always_open() and not lapsed:
                word = "commit" if kind == Kind.COMMIT else "rollback"
                raise sql_error(1, "cannot %s - no transaction is active" % word)
            self._sql_ended = False
            self._commit() if kind == Kind.COMMIT else self._rollback()
            # With autocommit=False, sqlite3 opens the next transaction only
            # at commit() or rollback(): SQLite commits each write until then.
            self._sql_ended = self._autocommit is False
            cur._remote([], [], -1)
            cur._lastrowid = self._last_rowid
            return cur
        if session == NOT_BEGUN and kind in (Kind.READ, Kind.RELEASE, Kind.ROLLBACK_TO) and (
            kind != Kind.READ or self._reads_here_after_refusal()
        ):
            # Nothing of the transaction ran on the arbiter: no savepoint
            # of it exists, and after its first write found the database
            # locked its reads go on from a snapshot, as sqlite3's (rather
            # than wait for the writer again).
            session = None
        if session is None:
            if kind == Kind.READ:
                return self._read_here(cur, sql, params)
            if kind in (Kind.RELEASE, Kind.ROLLBACK_TO):
                raise sql_error(1, "no such savepoint: %s" % detail)
            if kind == Kind.SAVEPOINT or self._opens(kind, bool(detail)):
                # A SAVEPOINT that opens the transaction takes the writer
                # (its begin goes with it): refused, it leaves none.
                self._begin(Begun.CLOSES if kind == Kind.SAVEPOINT else None)
        if self._query_only and (kind in (Kind.DML, Kind.WRITE) or (kind == Kind.UNKNOWN and begins(sql))):
            # PRAGMA query_only runs on the local connection; sqlite3's own
            # would refuse the write (after its implicit BEGIN, as here).
            cur._remote([], [], -1)
            raise sql_error(8, "attempt to write a readonly database")
        # A SAVEPOINT begins the transaction only where none was open
        # already (with autocommit=False, sqlite3 always has one).
        began_it = session is None and self._remote.session is not None and not self._always_open()
        c = self._classifier
        try:
            self._own_functions(sql)
        except _std.NotSupportedError:
            cur._remote([], [], -1)
            raise
        encoded = encode_params(params, _adapt, c.unused_in(sql, params), c.asked(sql, params), c.order_of(sql))
        # Rows are counted for DML; for a statement only the arbiter could
        # compile (a table created in this transaction), by its first word.
        dml = kind == Kind.DML or (kind == Kind.UNKNOWN and begins(sql))
        try:
            if self._remote.session is not None:
                result = self._remote.execute(sql, encoded)
            else:
                result = self._remote.write(sql, encoded)
        except BaseException as e:
            # As sqlite3 leaves a cursor whose statement failed: no rows,
            # no description, rowcount -1, lastrowid as it was; changes()
            # says 0 after a failed INSERT, UPDATE or DELETE.
            cur._remote([], [], -1)
            if dml:
                self._last_changes = 0
            self._begin_refused()
            if isinstance(e, _std.OperationalError):
                raise self._not_here(e) from None
            raise
        if kind in (Kind.WRITE, Kind.UNKNOWN):
            self._classifier.forget()
            self._schema_in_session = self._remote.session is not None
        if kind == Kind.SAVEPOINT:
            self._savepoints.opened(detail or "", began_it)
        elif kind == Kind.ROLLBACK_TO:
            self._savepoints.rolled_back_to(detail or "")
        elif kind == Kind.RELEASE and self._savepoints.released(detail or ""):
            self._commit()  # releasing a savepoint that began it commits, as in SQLite
        columns, rows = rows_of(result)
        affected = int(result.get("rows_affected") or 0)
        if dml:
            self._changes += affected
            self._last_changes = affected
            if result.get("last_insert_rowid"):
                self._last_rowid = int(result["last_insert_rowid"])
        if not many:
            cur._lastrowid = self._last_rowid
        counted = detail if kind == Kind.DML else dml
        cur._remote(columns, rows, affected if counted else -1, result.get("decltypes"))
        return cur

    def _run_many(self, cur: Cursor, sql: str, seq: Any) -> Cursor:
        with self._call():
            if self._readonly:
                return readonly.run_many(cur, sql, seq)
            return run_many(self, cur, sql, seq, _adapt)

    def _script(self, cur: Cursor, script: str) -> Cursor:
        with self._call():
            return self._run_script(cur, script)

    def _run_script(self, cur: Cursor, script: str) -> Cursor:
        if self._readonly:
            return readonly.script(cur, script)
        if not isinstance(script, str):
            raise ValueError("script argument must be unicode.")
        if self.in_transaction and self._autocommit is not False and self._autocommit is not True:
            self._commit()  # as sqlite3 in its legacy mode, before the script
        self._in_script = True
        lastrowid = cur._lastrowid  # a script leaves it as it was, in sqlite3
        try:
            for sql in split(script):
                # Inside the script's call: a lapse before it lets its
                # first statement be a ROLLBACK, and only the first.
                self._route(cur, sql, (), False)
                self._lapsed_before = False
        finally:
            self._in_script = False
            cur._lastrowid = lastrowid
        cur._remote([], [], -1)
        return cur

    def close(self) -> None:
        if self._closed:
            return super().close()  # its own thread check, as in sqlite3
        # From another thread, refused before the transaction is touched.
        self._usable()
        with self._lock:
            try:
                self._remote.rollback()
            finally:
                self._closed = True
                self._remote.close()
                self._snapshot.close()
                if self._twin is not None:
                    self._twin.close()
                super().close()

    def migrate(self, migrations) -> dict:
        """Brings the schema up to the last of ``migrations`` (a directory
        of ``NNNN_name.sql`` files, or ``(version, name, sql)`` tuples):
        see ``Scribe.migrate``. Any number of processes may call it at
        startup; each step runs once."""
        from ..migrations import as_list

        with self._lock:
            if self.in_transaction:
                self._commit()
            return self._remote.migrate(as_list(migrations))

    def arbiter_sqlite_version(self) -> str:
        """The version of the SQLite the arbiter writes with."""
        return str(self._remote.status().get("sqlite_version", ""))
