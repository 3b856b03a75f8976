"""Differential scripts (see ``dropin_scripts``) for what a failing
statement leaves behind: the cursor's rowcount, description and
lastrowid, the transaction sqlite3 begins before it binds, and the
errors of parameters that do not fit a statement only the arbiter can
compile (a table created in the open transaction)."""

import sys

from dropin_scripts import Log


def words(fn):
    """The class and the message of what ``fn`` raises."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001  (the error is the observation)
        return type(e).__name__, str(e)
    return None


def after_a_failure(mod, path):
    log = Log()
    c = mod.connect(path)
    c.execute("CREATE TABLE a(x UNIQUE)")
    c.commit()
    cur = c.cursor()
    cur.execute("INSERT INTO a VALUES (1)")
    log.note("before", cur.rowcount, cur.lastrowid)
    log.attempt("duplicate", lambda: cur.execute("INSERT OR FAIL INTO a VALUES (2), (1)"))
    log.note("after", cur.rowcount, cur.description, cur.lastrowid, cur.fetchall())
    fresh = c.cursor()
    log.attempt("duplicate, fresh cursor", lambda: fresh.execute("INSERT INTO a VALUES (1)"))
    log.note("fresh", fresh.rowcount, fresh.lastrowid)
    script = c.cursor()
    script.executescript("INSERT INTO a VALUES (3);")
    log.note("after a script", script.lastrowid, script.rowcount)
    # sqlite3 begins a DML statement's transaction before it binds.
    log.note("count", words(lambda: c.execute("INSERT INTO a VALUES (?)", (1, 2))), c.in_transaction)
    c.rollback()
    log.note("range", words(lambda: c.execute("INSERT INTO a VALUES (?)", (2**64,))), c.in_transaction)
    c.rollback()
    log.note("select", words(lambda: c.execute("SELECT ?", (1, 2))), c.in_transaction)
    # A table of the open transaction: only the arbiter compiles these.
    c.execute("INSERT INTO a VALUES (10)")
    c.execute("CREATE TABLE t(x, y)")
    log.note("too few", words(lambda: c.execute("INSERT INTO t VALUES (?, ?)", (1,))))
    # (Before 3.11 sqlite3 names the missing parameter by its index.)
    log.attempt("name missing", lambda: c.execute("INSERT INTO t VALUES (:x, :y)", {"x": 1}))
    c.rollback()
    log.note("rows", c.execute("SELECT x FROM a ORDER BY x").fetchall())
    c.close()
    return log


def other_statements(mod, path):
    """lastrowid after transaction control and pragmas (sqlite3 sets it
    after every statement); executemany's first set that does not fit
    (the transaction begun first); executemany right after a session that
    dropped the table it names."""
    log = Log()
    c = mod.connect(path, isolation_level=None)
    c.execute("CREATE TABLE t(x, y)")
    c.execute("INSERT INTO t VALUES (1, 1)")
    for sql in ("BEGIN", "ROLLBACK", "BEGIN IMMEDIATE", "COMMIT", "PRAGMA user_version",
                "PRAGMA user_version = 3"):
        log.note(sql, c.execute(sql).lastrowid)
    c.close()
    c = mod.connect(path)
    log.note("few", words(lambda: c.executemany("INSERT INTO t VALUES (?, ?)", [(1,)])), c.in_transaction)
    c.rollback()
    log.note("range", words(lambda: c.executemany("INSERT INTO t VALUES (?, 1)", [(2**64,)])), c.in_transaction)
    c.rollback()
    c.execute("CREATE TABLE gone(x)")
    c.execute("INSERT INTO t VALUES (2, 2)")
    c.execute("DROP TABLE IF EXISTS gone")
    c.cursor().execute("END")
    log.note("dropped", words(lambda: c.executemany("DELETE FROM gone WHERE x = ?", [(1,)])), c.in_transaction)
    c.close()
    return log


def converters(mod, path):
    """detect_types and text_factory on rows read here and on rows the
    arbiter answers (RETURNING, reads in a transaction) alike."""
    log = Log()
    std_converters = __import__("sqlite3").converters
    mod.register_converter("scribetag", lambda b: ("tag", b))
    try:
        c = mod.connect(path, detect_types=mod.PARSE_DECLTYPES | mod.PARSE_COLNAMES)
        c.execute("CREATE TABLE v(a scribetag, b SCRIBETAG(3), c scribetag NOT NULL, d)")
        c.commit()
        row = (5, 1.5, "t", 1e20)
        cur = c.execute("INSERT INTO v VALUES (?, ?, ?, ?) RETURNING *, d AS \"d [scribetag]\"", row)
        log.note("returning", cur.fetchall(), [d[0] for d in cur.description])
        c.execute("INSERT INTO v VALUES (NULL, 0.1, x'00ff', 100.0)")
        cur = c.execute("SELECT a, b, c, d AS \"dd [scribetag] [x]\" FROM v")
        log.note("in the transaction", cur.fetchall(), [d[0] for d in cur.description])
        c.text_factory = bytes
        log.note("text_factory", c.execute("SELECT d, 'plain' FROM v").fetchall())
        c.commit()
        cur = c.execute("SELECT a, b, c, d AS \"dd [scribetag] [x]\" FROM v")
        log.note("read here", cur.fetchall(), [d[0] for d in cur.description])
        c.text_factory = str
        # Empty values and NULL never reach a converter; -0.0 is 0.0 as
        # SQLite writes it; a row is converted when fetched, with the
        # settings of that moment.
        cur = c.execute("INSERT INTO v VALUES ('', x'', -0.0, NULL) RETURNING *")
        c.text_factory = bytes
        log.note("empty", cur.fetchall())
        if sys.version_info >= (3, 11):
            # (Before 3.11 sqlite3 converts the next row ahead of each
            # fetch; the drop-in converts as 3.11 does.)
            mod.register_converter("scribebad", lambda b: 1 / 0 if b == b"boom" else b)
            c.execute("CREATE TABLE w(b scribebad)")
            c.execute("INSERT INTO w VALUES ('ok'), ('boom')")
            cur = c.execute("SELECT b FROM w")
            log.note("first", cur.fetchone(), cur.description is not None)
            log.attempt("second", cur.fetchone)
        c.rollback()
        c.close()
    finally:
        std_converters.pop("SCRIBETAG", None)
        std_converters.pop("SCRIBEBAD", None)
    return log


def read_only_and_opening(mod, path):
    """A connection opened ``mode=ro`` reads, runs transactions, and fails
    every write as sqlite3's read-only connection does; opening a file in
    a directory that does not exist, or with a keyword sqlite3 does not
    know, fails as sqlite3's connect does."""
    import os
    import urllib.parse

    log = Log()
    c = mod.connect(path)
    c.execute("CREATE TABLE r(x)")
    c.execute("INSERT INTO r VALUES (1)")
    c.commit()
    c.close()
    ro = mod.connect("file:%s?mode=ro" % urllib.parse.quote(path), uri=True)
    cur = ro.execute("SELECT x FROM r")
    log.note("read", cur.fetchall(), ro.in_transaction, cur.lastrowid)
    log.note("insert", words(lambda: ro.execute("INSERT INTO r VALUES (2)")), ro.in_transaction)
    log.note("many", words(lambda: ro.executemany("INSERT INTO r VALUES (?)", [(3,)])))
    log.note("script", words(lambda: ro.executescript("INSERT INTO r VALUES (4);")))
    log.note("ddl", words(lambda: ro.execute("CREATE TABLE s(y)")))
    ro.rollback()
    ro.execute("BEGIN")
    log.note("begun", ro.in_transaction, ro.execute("SELECT count(*) FROM r").fetchone())
    ro.commit()
    log.note("ended", ro.in_transaction)
    ro.close()
    missing = os.path.join(os.path.dirname(path), "no-such-dir", "x.db")
    log.note("missing dir", words(lambda: mod.connect(missing)))
    # (Its words differ from one Python to the next.)
    log.attempt("unknown keyword", lambda: mod.connect(path, no_such_keyword=1))
    log.note("ro, no file", words(lambda: mod.connect("file:%s?mode=ro" % missing, uri=True)))
    return log


def error_names(mod, path):
    """An error carries sqlite3's ``sqlite_errorcode`` and
    ``sqlite_errorname`` (Python 3.11+), whichever side found it."""

    def named(fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001  (the names are the observation)
            return type(e).__name__, getattr(e, "sqlite_errorcode", None), getattr(e, "sqlite_errorname", None)
        return None

    log = Log()
    c = mod.connect(path, isolation_level=None)
    c.execute("CREATE TABLE e(x UNIQUE CHECK (x < 100), y NOT NULL DEFAULT 0)")
    c.execute("INSERT INTO e(x) VALUES (1)")
    log.note("unique", named(lambda: c.execute("INSERT INTO e(x) VALUES (1)")))
    log.note("check", named(lambda: c.execute("INSERT INTO e(x) VALUES (500)")))
    log.note("not null", named(lambda: c.execute("INSERT INTO e(x, y) VALUES (2, NULL)")))
    log.note("commit, none open", named(lambda: c.execute("COMMIT")))
    c.execute("BEGIN")
    log.note("begin twice", named(lambda: c.execute("BEGIN")))
    log.note("unique in a transaction", named(lambda: c.execute("INSERT INTO e(x) VALUES (1)")))
    c.execute("ROLLBACK")
    log.note("rollback to nothing", named(lambda: c.execute("ROLLBACK TO nowhere")))
    # A table nobody has, while another connection holds a transaction:
    # the error at once (here without waiting behind that transaction).
    c.execute("PRAGMA journal_mode=WAL").fetchall()  # as the arbiter keeps it
    other = mod.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO e(x) VALUES (7)")
    log.note("no such table", named(lambda: c.execute("SELECT * FROM e JOIN nowhere")))
    log.note("no such table, a write", named(lambda: c.execute("INSERT INTO nowhere VALUES (1)")))
    other.execute("COMMIT")
    other.close()
    log.note("kept", c.execute("SELECT count(*) FROM e").fetchone())
    c.close()
    return log


def unbindable(mod, path):
    """A value sqlite3 cannot bind is named by its parameter: its number
    (1-based; before 3.11 0-based), or its name, in the statement's order
    whatever the order of the set; in a write, a transaction's write,
    ``executemany``, and a read."""
    log = Log()
    c = mod.connect(path)
    c.execute("CREATE TABLE u(a, b, c)")
    c.commit()
    thing = object()
    log.note("positional", words(lambda: c.execute("INSERT INTO u VALUES (?, ?, ?)", (1, 2, thing))))
    log.note("named", words(lambda: c.execute("INSERT INTO u VALUES (:a, :b, :c)", {"c": 3, "b": thing, "a": 1})))
    log.note("numbered", words(lambda: c.execute("INSERT INTO u VALUES (?2, ?1, 3)", (1, thing))))
    c.execute("INSERT INTO u VALUES (1, 2, 3)")
    log.note("in a transaction", words(lambda: c.execute("UPDATE u SET a = ? WHERE b = ?", (thing, 2))), c.in_transaction)
    c.rollback()
    log.note("executemany", words(lambda: c.executemany("INSERT INTO u VALUES (?, ?, ?)", [(1, 2, 3), (4, thing, 6)])))
    c.rollback()
    log.note("read", words(lambda: c.execute("SELECT ?, ?", (1, thing))))
    log.note("rows", c.execute("SELECT count(*) FROM u").fetchone())
    c.close()
    return log


SCRIPTS = [after_a_failure, other_statements, converters, read_only_and_opening, error_names, unbindable]
