"""Differential scripts for a connection's cursors and state (see
``dropin_scripts``): a read left half done must not hold the connection's
view of the file, ``sqlite3.Row`` classes on the rows the arbiter
answers, ``fetchmany`` sizes, parameters sqlite3 refuses, pragma values
as SQLite reads them, and what a closed connection still answers."""

import sqlite3 as std

from dropin_scripts import Log


def _filled(mod, path, **kwargs):
    c = mod.connect(path, isolation_level=None, **kwargs)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE t(v UNIQUE)")
    c.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (3,)])
    return c


def _count(c):
    return c.execute("SELECT count(*) FROM t").fetchall()


def half_read_reads(mod, path):
    """sqlite3 steps a script's SELECT to its end and resets a cursor's
    statement when the cursor runs the next; a cursor left half read holds
    the connection on the file as it was, yet the connection sees the
    tables it creates itself."""
    log = Log()
    c = _filled(mod, path)
    log.attempt("script", lambda: c.executescript("SELECT * FROM t; INSERT INTO t VALUES (1);"))
    other = mod.connect(path, isolation_level=None)
    other.execute("INSERT INTO t VALUES (4)")
    log.note("after another's commit", _count(c))
    c.execute("CREATE TABLE u(y)")
    log.attempt("table made after the script", lambda: c.execute("INSERT INTO u VALUES (1)").rowcount)
    cur = c.cursor()
    cur.execute("SELECT v FROM t ORDER BY v")
    log.note("first", cur.fetchone())
    cur.execute("INSERT INTO t VALUES (5)")
    other.execute("INSERT INTO t VALUES (6)")
    log.note("after the cursor wrote", _count(c), cur.fetchall())
    left = c.execute("SELECT v FROM t ORDER BY v")
    log.note("left half read", left.fetchone())
    c.execute("CREATE TABLE w(y)")
    log.attempt("insert beside it", lambda: c.execute("INSERT INTO w VALUES (1)").rowcount)
    log.attempt("read beside it", lambda: c.execute("SELECT * FROM w").fetchall())
    log.note("the rest of it", left.fetchall())
    log.note("after it", _count(c))
    # A cursor whose next statement fails before it runs (a wrong count of
    # bindings) is reset all the same.
    cur = c.execute("SELECT v FROM t ORDER BY v")
    log.note("half read again", cur.fetchone())
    log.attempt("a wrong count on it", lambda: cur.execute("INSERT INTO t VALUES (?)", (1, 2)))
    other.execute("INSERT INTO t VALUES (7)")
    log.note("after another's commit again", _count(c))
    other.close()
    c.close()
    return log


class Named(std.Row):
    """A program's own row class."""

    def doubled(self):
        return self["Doubled"]


def half_read_pragmas(mod, path):
    """A program's set-up step behind a half-read cursor: it sets
    ``user_version`` and alters a table, then reads both back with
    pragmas, which see its own writes as its SELECTs do (helper 93: the
    drop-in read them on the held connection and answered the old ones);
    another connection's changes stay out of the held view."""
    log = Log()
    c = _filled(mod, path)
    c.executemany("INSERT INTO t VALUES (?)", [(k,) for k in range(10, 300)])
    left = c.execute("SELECT v FROM t ORDER BY v")
    log.note("first", left.fetchone())
    c.execute("PRAGMA user_version = 11")
    log.note("own user_version", c.execute("PRAGMA user_version").fetchall())
    log.note("columns before", [r[1] for r in c.execute("PRAGMA table_info(t)")])
    c.execute("ALTER TABLE t ADD COLUMN b DEFAULT 5")
    log.note("own column", [r[1] for r in c.execute("PRAGMA table_info(t)")])
    log.note("index list", [r[1:3] for r in c.execute("PRAGMA index_list(t)")])
    log.note("busy_timeout", c.execute("PRAGMA busy_timeout").fetchall())
    log.note("the rest of it", len(left.fetchall()))
    log.note("after it", c.execute("PRAGMA user_version").fetchall())
    c.close()
    return log


def row_classes(mod, path):
    """``sqlite3.Row`` and a subclass of it as row_factory: names, ASCII-only
    case folding, equality and hashing, on rows a write returns, rows read
    in a transaction and rows read outside one alike."""
    log = Log()
    c = _filled(mod, path)
    c.execute("CREATE TABLE r(v, \"ü\")")
    for i, factory in enumerate((std.Row, Named)):
        c.row_factory = factory
        r = c.execute("INSERT INTO r VALUES (?, 'x') RETURNING v, v * 2 AS Doubled, \"ü\"", (i,)).fetchone()
        log.note(factory.__name__, type(r).__name__, r.keys(), r["V"], r["doubled"], tuple(r), len(r))
        log.attempt("folded", lambda: r["Ü"])
        log.note("in place", r["ü"], r[1], r[-1])
        if factory is Named:
            log.note("its method", r.doubled())
        here = c.execute("SELECT v, v * 2 AS Doubled, \"ü\" FROM r WHERE v = ?", (i,)).fetchone()
        log.note("equal to one read here", r == here, hash(r) == hash(here))
        c.execute("BEGIN")
        inside = c.execute("SELECT v, v * 2 AS Doubled, \"ü\" FROM r WHERE v = ?", (i,)).fetchone()
        log.note("in a transaction", type(inside).__name__, inside.keys(), inside == r, hash(inside) == hash(r))
        c.execute("COMMIT")
    c.close()
    return log


def fetchmany_sizes(mod, path):
    """``fetchmany`` takes an int: below 1 it fetches every row left (as
    does an ``arraysize`` of 0); None and a float are refused."""
    log = Log()
    c = _filled(mod, path)
    cur = c.execute("INSERT INTO t VALUES (7), (8), (9), (10) RETURNING v")
    log.note("one", cur.fetchmany(1))
    log.note("zero", cur.fetchmany(0))
    c.execute("BEGIN")
    for size in (-1, None, 2.5, True):
        cur = c.execute("SELECT v FROM t ORDER BY v")
        log.attempt("size %r" % (size,), lambda: cur.fetchmany(size))
    cur = c.execute("SELECT v FROM t ORDER BY v")
    cur.arraysize = 0
    log.note("arraysize 0", cur.fetchmany())
    c.execute("COMMIT")
    c.close()
    return log


def parameters_refused(mod, path):
    """Parameters that are neither a sequence nor a dict are refused,
    however often the statement ran before, and nothing is written; a DML
    statement has begun its transaction first."""
    log = Log()
    c = _filled(mod, path)
    c.execute("INSERT INTO t VALUES (?)", (20,))
    for label, params in (("set", {21}), ("iterator", iter([22])), ("none", None), ("int", 23)):
        log.attempt(label, lambda: c.execute("INSERT INTO t VALUES (?)", params))
    c.execute("INSERT INTO t VALUES (24)")
    log.attempt("none, no marks", lambda: c.execute("INSERT INTO t VALUES (24)", None))
    log.attempt("text", lambda: c.execute("INSERT INTO t VALUES (?)", "x").rowcount)
    log.note("rows", c.execute("SELECT v FROM t ORDER BY v").fetchall())
    legacy = mod.connect(path)
    for label, sql, params in (
        ("a set", "INSERT INTO t VALUES (?)", {25}),
        ("an object", "INSERT INTO t VALUES (?)", (object(),)),
        ("too big", "INSERT INTO t VALUES (?)", (2**70,)),
        # Refused before binding: no transaction begins.
        ("a NUL", "INSERT INTO t VALUES (26)\x00", ()),
        ("two statements", "INSERT INTO t VALUES (27); INSERT INTO t VALUES (28)", ()),
    ):
        log.attempt("%s, legacy transactions" % label, lambda: legacy.execute(sql, params))
        log.note("in a transaction", legacy.in_transaction)
        legacy.rollback()
    legacy.close()
    c.close()
    return log


def pragma_values(mod, path):
    """``busy_timeout`` takes what SQLite makes of any value; while
    ``query_only`` is on, writes fail as SQLite fails them (a DML statement
    after its implicit BEGIN) and reads go on."""
    log = Log()
    c = _filled(mod, path)
    for value in ("'abc'", "0x10", "'5000abc'", "''", "on", "250"):
        log.attempt(value, lambda: c.execute("PRAGMA busy_timeout = %s" % value).fetchall())
        log.note(value, c.execute("PRAGMA busy_timeout").fetchall())
    c.execute("PRAGMA query_only = 1")
    log.attempt("insert", lambda: c.execute("INSERT INTO t VALUES (30)"))
    log.attempt("create", lambda: c.execute("CREATE TABLE q(x)"))
    log.attempt("read", lambda: _count(c))
    legacy = mod.connect(path)
    legacy.execute("PRAGMA query_only = true")
    log.attempt("legacy insert", lambda: legacy.execute("INSERT INTO t VALUES (31)"))
    log.note("legacy", legacy.in_transaction)
    legacy.rollback()
    legacy.execute("PRAGMA query_only = 0")
    legacy.execute("INSERT INTO t VALUES (32)")
    legacy.commit()
    legacy.close()
    c.execute("PRAGMA query_only = 0")
    c.execute("INSERT INTO t VALUES (33)")
    log.note("rows", c.execute("SELECT v FROM t ORDER BY v").fetchall())
    c.close()
    return log


def closed_connection(mod, path):
    """A closed connection answers nothing more, and the rows of its
    cursors are gone with it."""
    log = Log()
    c = _filled(mod, path)
    cur = c.execute("INSERT INTO t VALUES (40), (41) RETURNING v")
    c.close()
    for name in ("in_transaction", "total_changes", "isolation_level"):
        log.attempt(name, lambda: getattr(c, name))
    log.attempt("set isolation_level", lambda: setattr(c, "isolation_level", "DEFERRED"))
    log.attempt("with", lambda: c.__enter__() is c)
    log.attempt("fetch", lambda: cur.fetchall())
    return log


SCRIPTS = [half_read_reads, half_read_pragmas, row_classes, fetchmany_sizes, parameters_refused, pragma_values, closed_connection]
