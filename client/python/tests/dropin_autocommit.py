"""Differential scripts for Python 3.12's ``autocommit`` (see
``dropin_scripts``): with it False a transaction is always open, SQL's own
COMMIT and ROLLBACK included, and its reads keep one snapshot; with it
True every statement commits on its own."""

import sqlite3 as std

from dropin_habits import count_rows
from dropin_scripts import SCHEMA, Log


def autocommit_false(mod, path):
    """Python 3.12's autocommit=False: sqlite3 keeps a transaction open
    all along, so every write is in one, DDL and ``WITH … INSERT``
    included, and rollback undoes them. (The drop-in's session opens at
    the first write; in_transaction says True from the start, as there.)"""
    log = Log()
    c = mod.connect(path, autocommit=False)
    log.note("connected", c.in_transaction)
    c.execute(SCHEMA)
    log.note("ddl", c.in_transaction)
    c.rollback()
    log.note("ddl undone", c.execute("SELECT count(*) FROM sqlite_master WHERE name = 't'").fetchone())
    c.execute(SCHEMA)
    c.commit()
    cur = c.execute("WITH v(tag, n) AS (VALUES ('w', 1)) INSERT INTO t(tag, n) SELECT tag, n FROM v")
    log.note("with insert", cur.rowcount, c.in_transaction)
    c.rollback()
    cur = c.executemany("WITH v(n) AS (VALUES (?)) INSERT INTO t(tag, n) SELECT 'm' || n, n FROM v", [(1,), (2,)])
    log.note("with executemany", cur.rowcount, c.in_transaction)
    c.rollback()
    log.note("all undone", count_rows(mod, path))
    c.execute("INSERT INTO t(tag, n) VALUES ('kept', 1)")
    c.commit()
    log.note("committed", count_rows(mod, path))
    # A table made in the transaction: the local connection cannot see it
    # yet, and the rows its writes change are still counted.
    c.execute("CREATE TABLE u(x)")
    cur = c.execute("INSERT INTO u VALUES (1)")
    log.note("insert after ddl", cur.rowcount, cur.lastrowid)
    cur = c.execute("UPDATE u SET x = 2")
    log.note("update after ddl", cur.rowcount, c.total_changes)
    c.rollback()
    # A script and a pragma write run in the open transaction too.
    c.executescript("INSERT INTO t(tag, n) VALUES ('s1', 1); INSERT INTO t(tag, n) VALUES ('s2', 2);")
    log.note("script", c.in_transaction, count_rows(mod, path))
    c.execute("PRAGMA user_version = 7")
    c.rollback()
    log.note("undone", count_rows(mod, path), c.execute("PRAGMA user_version").fetchone())
    # A savepoint in the transaction sqlite3 keeps open does not commit
    # when released.
    c.execute("SAVEPOINT sp")
    c.execute("INSERT INTO t(tag, n) VALUES ('sp', 1)")
    c.execute("RELEASE sp")
    log.note("released", count_rows(mod, path))
    c.rollback()
    log.attempt("BEGIN inside", lambda: c.execute("BEGIN"))
    # An SQL COMMIT ends it; until commit() or rollback(), SQLite commits
    # each write on its own.
    c.execute("INSERT INTO t(tag, n) VALUES ('c1', 1)")
    c.execute("COMMIT")
    c.execute("INSERT INTO t(tag, n) VALUES ('c2', 1)")
    c.executemany("INSERT INTO t(tag, n) VALUES (?, 1)", [("c2m",)])
    log.note("after SQL COMMIT", c.in_transaction, count_rows(mod, path))
    log.attempt("rollback()", c.rollback)
    log.attempt("commit()", c.commit)
    c.execute("BEGIN")
    c.execute("INSERT INTO t(tag, n) VALUES ('c3', 1)")
    c.commit()  # ends that one and opens the usual transaction again
    c.execute("INSERT INTO t(tag, n) VALUES ('c4', 1)")
    log.note("in it again", c.in_transaction)
    c.close()
    log.note("closed", count_rows(mod, path))
    return log


def autocommit_false_snapshot(mod, path):
    """autocommit=False: the reads before the transaction's first write
    see one snapshot, and that write fails with "database is locked" when
    another connection committed since (again until rollback(), after which
    it goes); a write before any read, or after reads nobody overtook,
    goes. (WAL, as the arbiter keeps the file, for sqlite3 too.)"""
    from dropin_scripts import std_class

    def said(fn):
        try:
            return ("ok", fn())
        except Exception as e:  # noqa: BLE001  (the class and words are the observation)
            return (std_class(e), str(e))

    log = Log()
    c = mod.connect(path, autocommit=False)
    other = mod.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL").fetchall()  # as the arbiter keeps it
    other.execute(SCHEMA)
    log.note("first read", c.execute("SELECT count(*) FROM t").fetchone())
    other.execute("INSERT INTO t(tag, n) VALUES ('o1', 1)")
    log.note("same snapshot", c.execute("SELECT count(*) FROM t").fetchone())
    log.note("overtaken", said(lambda: c.execute("INSERT INTO t(tag, n) VALUES ('c1', 1)").rowcount))
    log.note("still the snapshot", c.execute("SELECT count(*) FROM t").fetchone())
    log.note("again", said(lambda: c.execute("UPDATE t SET n = n + 1").rowcount), c.in_transaction)
    log.note("committed", count_rows(mod, path))
    c.rollback()
    log.note("new snapshot", c.execute("SELECT count(*) FROM t").fetchone())
    # Parameters that do not fit open nothing: the snapshot goes on.
    log.note("unbound", said(lambda: c.execute("INSERT INTO t(tag, n) VALUES (?, ?)", (1,))))
    other.execute("INSERT INTO t(tag, n) VALUES ('o3', 1)")
    log.note("after it", c.execute("SELECT count(*) FROM t").fetchone())
    c.rollback()
    log.note("not overtaken", said(lambda: c.execute("INSERT INTO t(tag, n) VALUES ('c2', 1)").rowcount))
    c.commit()
    other.execute("INSERT INTO t(tag, n) VALUES ('o2', 1)")
    log.note("no read first", said(lambda: c.execute("INSERT INTO t(tag, n) VALUES ('c3', 1)").rowcount))
    log.note("in it", c.execute("SELECT tag FROM t ORDER BY id").fetchall())
    c.commit()
    # A cursor still being read when the first write comes.
    cur = c.execute("SELECT id FROM t ORDER BY id")
    first = cur.fetchone()[0]
    other.execute("UPDATE t SET n = 9 WHERE id = ?", (first,))
    log.note("overtaken mid-read", said(lambda: c.execute("UPDATE t SET n = 7 WHERE id = ?", (first,)).rowcount))
    log.note("rest of the read", cur.fetchall())
    c.rollback()
    other.close()
    c.close()
    log.note("rows", count_rows(mod, path))
    return log


def autocommit_modes(mod, path):
    """Python 3.12: with autocommit=True, commit(), rollback() and
    executescript() leave an SQL BEGIN's transaction alone; turning
    autocommit=False into the legacy mode keeps its transaction open."""
    log = Log()
    c = mod.connect(path, autocommit=True)
    c.execute(SCHEMA)
    c.execute("BEGIN")
    c.execute("INSERT INTO t(tag, n) VALUES ('a', 1)")
    c.commit()
    c.rollback()
    c.executescript("SELECT 1;")
    log.note("still open", c.in_transaction)
    c.execute("ROLLBACK")
    log.note("undone", count_rows(mod, path))
    c.close()
    c = mod.connect(path, autocommit=False)
    c.autocommit = std.LEGACY_TRANSACTION_CONTROL
    log.note("legacy, open", c.in_transaction)
    c.execute("CREATE TABLE u(y)")
    c.rollback()
    log.note("ddl undone", c.execute("SELECT count(*) FROM sqlite_master WHERE name = 'u'").fetchone())
    c.close()
    return log
