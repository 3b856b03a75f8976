"""Differential scripts for sqlite3's finer habits (see
``dropin_scripts``): which statements begin a transaction, what SQLite
rolling a transaction back looks like, savepoints, adapters, statements
with nothing to run (Python 3.12's ``autocommit``: ``dropin_autocommit``)."""

import sqlite3 as std

from dropin_scripts import SCHEMA, Log


def first_word(mod, path):
    """sqlite3 begins a transaction (and keeps a rowcount) only before a
    statement whose first word, past comments, is INSERT, UPDATE, DELETE
    or REPLACE: a ``WITH … INSERT`` commits on its own. And a savepoint
    released outside a transaction does not exist."""
    log = Log()
    c = mod.connect(path)
    c.execute(SCHEMA)
    c.commit()
    cur = c.execute("WITH v(tag, n) AS (VALUES ('w', 1)) INSERT INTO t(tag, n) SELECT tag, n FROM v")
    log.note("with insert", cur.rowcount, c.in_transaction, c.total_changes)
    cur = c.executemany("WITH v(n) AS (VALUES (?)) INSERT INTO t(tag, n) SELECT 'm' || n, n FROM v", [(1,), (2,)])
    log.note("with executemany", cur.rowcount, c.in_transaction, c.total_changes)
    c.rollback()  # nothing to undo: both committed as they ran
    log.note("kept", count_rows(mod, path))
    cur = c.execute("/* why */ -- and how\n  update t SET n = n + 1")
    log.note("commented update", cur.rowcount, c.in_transaction)
    c.rollback()
    log.note("undone", c.execute("SELECT sum(n) FROM t").fetchone())
    log.attempt("release outside", lambda: c.execute("RELEASE nowhere"))
    log.attempt("rollback to outside", lambda: c.execute("ROLLBACK TO nowhere"))
    c.execute("SAVEPOINT s")
    c.execute("INSERT INTO t(tag, n) VALUES ('s', 5)")
    c.execute("RELEASE s")
    log.note("released", c.in_transaction, count_rows(mod, path))
    c.close()
    return log


def sqlite_rolls_back(mod, path):
    """A statement after which SQLite rolls the whole transaction back
    raises its own error (IntegrityError for a constraint) and leaves no
    transaction, in executemany too; the next statement begins anew."""
    log = Log()
    c = mod.connect(path)
    c.execute(SCHEMA)
    c.execute(
        "CREATE TRIGGER no_big BEFORE INSERT ON t WHEN new.n > 100 "
        "BEGIN SELECT RAISE(ROLLBACK, 'too big'); END"
    )
    c.execute("INSERT INTO t(tag, n) VALUES ('x', 1)")
    c.commit()
    c.execute("INSERT INTO t(tag, n) VALUES ('a', 1)")
    log.attempt("or rollback", lambda: c.execute("INSERT OR ROLLBACK INTO t(tag, n) VALUES ('x', 2)"))
    log.note("after", c.in_transaction, count_rows(mod, path))
    c.execute("INSERT INTO t(tag, n) VALUES ('b', 1)")
    log.note("begun anew", c.in_transaction)
    log.attempt("raise rollback", lambda: c.execute("INSERT INTO t(tag, n) VALUES ('big', 101)"))
    log.note("after raise", c.in_transaction, count_rows(mod, path))
    c.execute("SAVEPOINT s")
    c.execute("INSERT INTO t(tag, n) VALUES ('c', 1)")
    sets = [("m%d" % i, i) for i in range(5)] + [("x", 9), ("after", 1)]
    log.attempt("many", lambda: c.executemany("INSERT OR ROLLBACK INTO t(tag, n) VALUES (?, ?)", sets))
    log.note("after many", c.in_transaction, count_rows(mod, path))
    log.attempt("release", lambda: c.execute("RELEASE s"))
    c.execute("INSERT INTO t(tag, n) VALUES ('d', 1)")
    # A savepoint of the same name in the new transaction is not its
    # outermost: releasing it commits nothing.
    c.execute("SAVEPOINT s")
    c.execute("RELEASE s")
    log.note("inner release", c.in_transaction)
    c.rollback()
    c.execute("INSERT INTO t(tag, n) VALUES ('e', 1)")
    c.commit()
    log.note("end", c.execute("SELECT tag FROM t ORDER BY tag").fetchall())
    for sql in ("", "  ", "-- nothing", "/* nothing */ ;", "/* unterminated"):
        log.attempt("empty %r" % sql, lambda: c.execute(sql).fetchall())
    c.execute("INSERT INTO t(tag, n) VALUES ('f', 1)")
    log.attempt("empty in a transaction", lambda: c.execute("-- nothing").fetchall())
    log.note("still in it", c.in_transaction)
    c.rollback()
    c.close()
    return log


class Cents(int):
    pass


class Conforms(int):
    def __conform__(self, protocol):
        return "conformed %d" % int(self)


def adapters_of_base_types(mod, path):
    """An adapter registered for a subclass of int, for bool, or for str
    itself is applied, as sqlite3 applies it (to executemany's sets too)."""
    log = Log()
    registered = [(Cents, lambda v: "%d.%02d" % divmod(int(v), 100)), (bool, lambda v: "yes" if v else "no")]
    try:
        for t, f in registered:
            mod.register_adapter(t, f)
        c = mod.connect(path, isolation_level=None)
        c.execute("CREATE TABLE a(v)")
        c.execute("INSERT INTO a VALUES (?), (?), (?), (?)", (Cents(1234), True, 7, "s"))
        c.executemany("INSERT INTO a VALUES (?)", [(Cents(5),), (False,), ("t",)])
        log.note("subclass and bool", c.execute("SELECT v, typeof(v) FROM a ORDER BY rowid").fetchall())
        mod.register_adapter(str, str.upper)
        mod.register_adapter(type(None), lambda v: "N")
        registered += [(str, None), (type(None), None)]
        c.execute("DELETE FROM a")
        c.execute("INSERT INTO a VALUES (?), (?)", ("lower", None))
        c.executemany("INSERT INTO a VALUES (?)", [("x",), ("y",), (None,)])
        log.note("str and None themselves", c.execute("SELECT v FROM a ORDER BY rowid").fetchall())
        c.execute("DELETE FROM a")
        c.execute("INSERT INTO a VALUES (?)", (Conforms(3),))
        log.note("conforms", c.execute("SELECT v FROM a").fetchall())
        mod.register_adapter(Cents, lambda v: 2**70)
        log.attempt("too big", lambda: c.executemany("INSERT INTO a VALUES (?)", [(1,), (Cents(2),)]))
        log.note("after too big", c.execute("SELECT count(*) FROM a").fetchone())
        c.close()
    finally:
        for t, _ in registered:
            std.adapters.pop((t, std.PrepareProtocol), None)
    return log


def count_rows(mod, path):
    """Rows committed, as another connection sees them."""
    other = mod.connect(path)
    try:
        return other.execute("SELECT count(*) FROM t").fetchone()
    finally:
        other.close()


def savepoints(mod, path):
    """A SAVEPOINT that begins the transaction commits it when released
    (the newest savepoint of that name and those after it go); one after
    BEGIN or after DML does not; a name used twice nests."""
    log = Log()
    c = mod.connect(path, isolation_level=None)
    c.execute(SCHEMA)
    c.execute("SAVEPOINT a")
    c.execute("INSERT INTO t(tag, n) VALUES ('a1', 1)")
    c.execute("SAVEPOINT a")
    c.execute("INSERT INTO t(tag, n) VALUES ('a2', 1)")
    c.execute("RELEASE a")
    log.note("inner a released", c.in_transaction, count_rows(mod, path))
    c.execute("SAVEPOINT b")
    c.execute("ROLLBACK TO a")
    log.note("rolled back to a", c.in_transaction, c.execute("SELECT count(*) FROM t").fetchone())
    c.execute("RELEASE a")
    log.note("outer a released", c.in_transaction, count_rows(mod, path))
    c.execute("BEGIN")
    c.execute("SAVEPOINT a")
    c.execute("INSERT INTO t(tag, n) VALUES ('b1', 1)")
    c.execute("RELEASE a")
    log.note("after BEGIN", c.in_transaction, count_rows(mod, path))
    c.execute("ROLLBACK")
    log.note("rolled back", count_rows(mod, path))
    # SQLite folds the case of ASCII letters only: "Ä" and "ä" differ.
    c.execute('SAVEPOINT "Ä"')
    c.execute("INSERT INTO t(tag, n) VALUES ('u1', 1)")
    c.execute('SAVEPOINT "ä"')
    c.execute('RELEASE "Ä"')
    log.note("non-ASCII names", c.in_transaction, count_rows(mod, path))
    c.close()
    return log


class Blob(bytearray):
    def __conform__(self, protocol):
        return "conformed"


def nothing_and_unused(mod, path):
    """Statements of only blanks and comments bind as sqlite3 binds (a
    wrong count fails); executemany refuses them; a named set's names the
    statement does not use are never adapted, whatever their values."""
    log = Log()
    c = mod.connect(path)
    c.execute("CREATE TABLE a(v)")
    c.commit()
    log.attempt("empty with a parameter", lambda: c.execute("", (1,)).fetchall())
    log.attempt("comment, no parameters", lambda: c.execute("-- x").fetchall())
    log.attempt("byte-order marks", lambda: c.execute("\ufeff; \ufeff-- x").fetchall())
    log.attempt("a write after one", lambda: c.execute("\ufeffINSERT INTO a VALUES (0)").rowcount)
    log.note("not begun", c.in_transaction)
    log.attempt("executemany of nothing", lambda: c.executemany(";", []).rowcount)
    log.attempt("executemany of nothing, a set", lambda: c.executemany(";", [(1,)]).rowcount)
    log.note("lastrowid", c.execute("/* nothing */").lastrowid)
    c.execute("INSERT INTO a VALUES (:v)", {"v": 1, "other": object(), "big": 2**70})
    c.executemany("INSERT INTO a VALUES (:v)", [{"v": 2, "other": {"x": 1}}])
    log.attempt("used and unbindable", lambda: c.execute("INSERT INTO a VALUES (:v)", {"v": object()}))
    c.execute("INSERT INTO a VALUES (?)", (Blob(b"z"),))
    c.execute("INSERT INTO a VALUES (?2 || ?1)", {"1": "b", "2": "a"})
    c.commit()
    log.note("rows", c.execute("SELECT v, typeof(v) FROM a ORDER BY rowid").fetchall())
    c.close()
    return log


def infinities(mod, path):
    """Infinite reals go in and come back as themselves, inside a
    transaction (read through the arbiter) and out of one (read from the
    file), from RETURNING and executemany too; a NaN is stored as NULL."""
    inf = float("inf")
    log = Log()
    c = mod.connect(path)
    c.execute("CREATE TABLE r(x REAL)")
    c.commit()
    c.execute("INSERT INTO r VALUES (?), (?), (9e999)", (inf, -inf))
    c.executemany("INSERT INTO r VALUES (?)", [(-inf,), (float("nan"),), (1.5,)])
    log.note("returning", c.execute("INSERT INTO r VALUES (-9e999) RETURNING x, typeof(x)").fetchall())
    log.note("in the transaction", c.execute("SELECT x, typeof(x) FROM r ORDER BY rowid").fetchall())
    c.commit()
    log.note("committed", c.execute("SELECT x FROM r WHERE x = ? OR x = ?", (inf, -inf)).fetchall())
    c.close()
    return log


def schema_changes(mod, path):
    """Statements right after the schema changed, by this connection or
    another: what they do depends on the new schema, not on the one this
    connection compiled against before."""
    log = Log()
    c = mod.connect(path, isolation_level=None)
    c.execute("CREATE TABLE t(x)")
    log.attempt("drop if exists, just created", lambda: c.execute("DROP TABLE IF EXISTS t").fetchall())
    c.execute("CREATE TABLE t(x)")
    c.execute("DROP TABLE t")
    log.attempt("insert into the dropped", lambda: c.execute("INSERT INTO t VALUES (1)"))
    log.note("after", c.in_transaction)
    log.attempt("drop if exists, none", lambda: c.execute("DROP TABLE IF EXISTS u").fetchall())
    other = mod.connect(path)
    other.execute("CREATE TABLE u(x)")
    other.commit()
    log.attempt("drop if exists, created elsewhere", lambda: c.execute("DROP TABLE IF EXISTS u").fetchall())
    c.execute("CREATE TABLE a(x)")
    c.execute("INSERT INTO a VALUES (1)")
    c.execute("BEGIN")
    log.note("before alter", c.execute("SELECT * FROM a").fetchall())
    c.execute("ALTER TABLE a ADD COLUMN z DEFAULT 5")
    cur = c.execute("SELECT * FROM a")
    log.note("after alter", cur.fetchall(), [d[0] for d in cur.description])
    c.execute("COMMIT")
    log.note("tables", c.execute("SELECT name FROM sqlite_master WHERE name IN ('a', 't', 'u')").fetchall())
    c.text_factory = bytes
    log.note("text_factory, returning", c.execute("INSERT INTO a(x) VALUES ('y') RETURNING x, z").fetchall())
    other.close()
    c.close()
    return log


class Filled(dict):
    def __missing__(self, name):
        return "filled " + name


class Folded(dict):
    def __getitem__(self, name):
        return dict.__getitem__(self, name.lower())


def mapping_subclasses(mod, path):
    """A dict subclass is looked up by the names the statement binds, as
    sqlite3 looks it up: its ``__missing__`` or its own ``__getitem__``
    answers (a ``defaultdict`` fills NULL), in execute and executemany, in
    a transaction and out of one; one that lacks a name fails as
    sqlite3's."""
    from collections import defaultdict

    log = Log()
    c = mod.connect(path)
    c.execute("CREATE TABLE m(a, b)")
    c.commit()
    log.note("missing", c.execute("INSERT INTO m VALUES (:a, :b) RETURNING *", Filled(a=1)).fetchall())
    c.commit()
    c.execute("INSERT INTO m VALUES (:a, @b)", defaultdict(lambda: None, {"a": 2}))
    c.executemany("INSERT INTO m VALUES (:A, :B)", [Folded(a=3, b=4), Folded(a=5, b=6, c=object())])
    log.attempt("lacking", lambda: c.execute("INSERT INTO m VALUES (:a, :b)", Folded(a=7)))
    log.note("read", c.execute("SELECT :x, :y", Filled(x=8)).fetchall())
    c.commit()
    log.note("rows", c.execute("SELECT * FROM m ORDER BY rowid").fetchall())
    c.close()
    return log


SCRIPTS = [
    first_word, sqlite_rolls_back, adapters_of_base_types, savepoints, nothing_and_unused, infinities,
    schema_changes, mapping_subclasses,
]
