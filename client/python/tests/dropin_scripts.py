"""DB-API scripts for the differential test: each takes a module (the
standard ``sqlite3`` or the drop-in) and a database path, and returns what
it observed. Exceptions are observed as the standard class they are (or
derive from), so the drop-in must raise the same classes."""

import sqlite3 as std

SCHEMA = (
    "CREATE TABLE t(id INTEGER PRIMARY KEY, tag TEXT NOT NULL UNIQUE, n INTEGER "
    "CHECK (n >= 0), b BLOB, r REAL)"
)


def std_class(e):
    for cls in type(e).__mro__:
        if cls.__module__ == "sqlite3" or cls in (MemoryError, OverflowError, TypeError, ValueError):
            return cls.__name__
    return type(e).__name__


class Log(list):
    def note(self, *what):
        self.append(what)

    def attempt(self, label, fn):
        try:
            self.append((label, "ok", fn()))
        except Exception as e:  # noqa: BLE001  (the class is the observation)
            self.append((label, "raised", std_class(e)))


def autocommit(mod, path):
    log = Log()
    c = mod.connect(path, isolation_level=None)
    c.execute(SCHEMA)
    cur = c.execute("INSERT INTO t(tag, n) VALUES (?, ?)", ("a", 1))
    log.note("insert", cur.rowcount, cur.lastrowid, c.in_transaction)
    cur = c.execute("INSERT INTO t(tag, n) VALUES (:tag, :n)", {"tag": "b", "n": 2, "unused": 9})
    log.note("named", cur.rowcount, cur.lastrowid)
    log.note("select", c.execute("SELECT id, tag, n FROM t ORDER BY id").fetchall())
    cur = c.execute("UPDATE t SET n = n + 10")
    log.note("update", cur.rowcount, cur.lastrowid)
    cur = c.execute("DELETE FROM t WHERE tag = 'a'")
    log.note("delete", cur.rowcount, c.total_changes)
    log.note("description", c.execute("SELECT id AS ident, tag FROM t").description)
    log.note("no description", c.execute("INSERT INTO t(tag, n) VALUES ('c', 3)").description)
    c.close()
    return log


def implicit_transactions(mod, path):
    log = Log()
    c = mod.connect(path)
    c.execute(SCHEMA)
    log.note("after ddl", c.in_transaction)
    c.execute("INSERT INTO t(tag, n) VALUES ('a', 1)")
    log.note("after dml", c.in_transaction, c.execute("SELECT count(*) FROM t").fetchone())
    c.rollback()
    log.note("rolled back", c.in_transaction, c.execute("SELECT count(*) FROM t").fetchone())
    c.execute("INSERT INTO t(tag, n) VALUES ('b', 2)")
    c.commit()
    log.note("committed", c.in_transaction, c.execute("SELECT tag FROM t").fetchall())
    with c:
        c.execute("INSERT INTO t(tag, n) VALUES ('c', 3)")
    log.note("with block", c.in_transaction, c.execute("SELECT count(*) FROM t").fetchone())
    try:
        with c:
            c.execute("INSERT INTO t(tag, n) VALUES ('d', 4)")
            raise KeyError("inside")
    except KeyError:
        pass
    log.note("with raised", c.execute("SELECT count(*) FROM t WHERE tag = 'd'").fetchone())
    c.close()
    other = mod.connect(path)
    log.note("seen by another", other.execute("SELECT tag FROM t ORDER BY tag").fetchall())
    other.close()
    return log


def explicit_transactions(mod, path):
    log = Log()
    c = mod.connect(path, isolation_level=None)
    c.execute(SCHEMA)
    c.execute("BEGIN IMMEDIATE")
    log.note("begun", c.in_transaction)
    c.execute("INSERT INTO t(tag, n) VALUES ('x', 1)")
    log.note("own write", c.execute("SELECT count(*) FROM t").fetchone())
    log.attempt("nested begin", lambda: c.execute("BEGIN"))
    c.execute("COMMIT")
    log.note("committed", c.in_transaction)
    log.attempt("commit outside", lambda: c.execute("COMMIT"))
    log.attempt("rollback outside", lambda: c.execute("ROLLBACK"))
    c.execute("BEGIN")
    c.execute("UPDATE t SET n = 99")
    c.execute("ROLLBACK")
    log.note("rolled back", c.execute("SELECT n FROM t").fetchall())
    c.execute("BEGIN")
    c.execute("SAVEPOINT s1")
    c.execute("INSERT INTO t(tag, n) VALUES ('y', 2)")
    c.execute("ROLLBACK TO s1")
    c.execute("INSERT INTO t(tag, n) VALUES ('z', 3)")
    c.execute("RELEASE s1")
    c.execute("COMMIT")
    log.note("savepoints", c.execute("SELECT tag FROM t ORDER BY tag").fetchall())
    c.close()
    return log


def many_and_scripts(mod, path):
    log = Log()
    c = mod.connect(path)
    c.executescript(
        SCHEMA + ";\n"
        "CREATE TABLE audit(tag TEXT);\n"
        "CREATE TRIGGER ta AFTER INSERT ON t BEGIN INSERT INTO audit VALUES (new.tag); END;\n"
        "-- a comment; with a semicolon\n"
        "INSERT INTO t(tag, n) VALUES ('s', 0);"
    )
    cur = c.executemany("INSERT INTO t(tag, n) VALUES (?, ?)", [("m%d" % i, i) for i in range(5)])
    log.note("executemany", cur.rowcount, c.in_transaction)
    c.commit()
    log.note("audit", c.execute("SELECT count(*) FROM audit").fetchone())
    log.attempt("executemany select", lambda: c.executemany("SELECT ?", [(1,), (2,)]))
    cur = c.execute("SELECT tag FROM t ORDER BY tag")
    cur.arraysize = 2
    log.note("fetchmany", cur.fetchmany(), cur.fetchmany(3), cur.fetchone(), len(cur.fetchall()))
    log.note("iterate", [r for r in c.execute("SELECT n FROM t WHERE n < 3 ORDER BY n")])
    c.close()
    return log


def rows_and_values(mod, path):
    log = Log()
    c = mod.connect(path, isolation_level=None)
    c.execute(SCHEMA)
    big, small = 2**63 - 1, -(2**63)
    values = [
        ("q'uote", big, b"\x00\xff\x10", 1.5),
        ('dq"?', small, b"", None),
        ("?? :x @y $z", None, None, -0.25),
        ("ünï ☃", 0, bytes(range(256)), 1e300),
    ]
    for tag, n, b, r in values:
        c.execute("INSERT INTO t(tag, n, b, r) VALUES (?, ?, ?, ?)", (tag, n if n is None or n >= 0 else None, b, r))
    c.execute("INSERT INTO t(tag, n) VALUES (?, ?)", ("big", big))
    # The smallest integer, where no CHECK stands in its way (b has no type).
    c.execute("INSERT INTO t(tag, b) VALUES (?, ?)", ("small", small))
    log.note("values", c.execute("SELECT tag, n, b, r FROM t ORDER BY id").fetchall())
    c.row_factory = mod.Row
    row = c.execute("SELECT id, tag AS Name FROM t ORDER BY id").fetchone()
    log.note("row", row.keys(), row["name"], row["NAME"], row[0], tuple(row), len(row))
    log.attempt("row missing key", lambda: row["nope"])
    # The same row read inside a transaction (answered by the arbiter).
    c.execute("BEGIN")
    inside = c.execute("SELECT id, tag AS Name FROM t ORDER BY id").fetchone()
    log.note("row in a transaction", inside.keys(), inside["name"], tuple(inside), inside == row,
             row == inside, isinstance(inside, mod.Row), hash(inside) == hash(row))
    log.attempt("row in a transaction, missing key", lambda: inside["nope"])
    c.execute("COMMIT")
    c.row_factory = lambda cur, r: {d[0]: v for d, v in zip(cur.description, r)}
    log.note("dict factory", c.execute("SELECT tag FROM t WHERE n IS NULL ORDER BY id").fetchall())
    c.row_factory = None
    cur = c.execute("INSERT INTO t(tag, n) VALUES ('ret', 5) RETURNING id, tag")
    log.note("returning", cur.fetchall(), cur.rowcount, cur.lastrowid)
    cur = c.execute(
        "INSERT INTO t(tag, n) VALUES ('ret', 6) ON CONFLICT(tag) DO UPDATE SET n = excluded.n"
    )
    log.note("upsert", cur.rowcount, c.execute("SELECT n FROM t WHERE tag = 'ret'").fetchone())
    log.attempt("too big", lambda: c.execute("SELECT ?", (2**64,)))
    # Buffers bind as blobs, NaN as NULL, whichever way the write goes.
    for tag, b, r in (("ba", bytearray(b"\x01\x02"), float("nan")), ("mv", memoryview(b"\x03"), float("inf"))):
        c.execute("INSERT INTO t(tag, b, r) VALUES (?, ?, ?)", (tag, b, r))
    log.note("buffers", c.execute("SELECT tag, b, typeof(b), r FROM t WHERE tag IN ('ba', 'mv')").fetchall())
    log.note("table-valued", c.execute("SELECT value FROM json_each('[1, \"two\"]')").fetchall())
    c.execute("BEGIN")
    c.execute("INSERT INTO t(tag) SELECT 'j' || value FROM json_each('[1, 2]')")
    log.note("table-valued in a transaction", c.execute("SELECT count(*) FROM json_each('[1, 2, 3]')").fetchone())
    c.execute("COMMIT")
    c.close()
    return log


def errors(mod, path):
    log = Log()
    c = mod.connect(path, isolation_level=None)
    c.execute(SCHEMA)
    c.execute("INSERT INTO t(tag, n) VALUES ('a', 1)")
    log.attempt("unique", lambda: c.execute("INSERT INTO t(tag, n) VALUES ('a', 2)"))
    log.attempt("not null", lambda: c.execute("INSERT INTO t(n) VALUES (2)"))
    log.attempt("check", lambda: c.execute("INSERT INTO t(tag, n) VALUES ('c', -1)"))
    log.attempt("no table", lambda: c.execute("INSERT INTO nope VALUES (1)"))
    log.attempt("syntax", lambda: c.execute("INSER INTO t VALUES (1)"))
    log.attempt("two statements", lambda: c.execute("SELECT 1; SELECT 2"))
    log.attempt("bindings", lambda: c.execute("INSERT INTO t(tag, n) VALUES (?, ?)", ("x",)))
    log.attempt("bindings again", lambda: c.execute("INSERT INTO t(tag, n) VALUES (?, ?)", ("x",)))
    # A text that ran once with the right count, then with a wrong one.
    log.attempt("bindings right", lambda: c.execute("INSERT INTO t(tag, n) VALUES (?, ?)", ("y", 1)).rowcount)
    log.attempt("bindings wrong", lambda: c.execute("INSERT INTO t(tag, n) VALUES (?, ?)", ("z", 1, 2)))
    log.attempt("named wrong", lambda: c.execute("INSERT INTO t(tag, n) VALUES (:a, :b)", {"a": "w"}))
    log.attempt("named missing", lambda: c.execute("INSERT INTO t(tag, n) VALUES (:a, :b)", {"a": "x"}))
    log.attempt("not str", lambda: c.execute(42))
    log.note("still one row", c.execute("SELECT count(*) FROM t").fetchone())
    cur = c.cursor()
    cur.close()
    log.attempt("closed cursor", lambda: cur.execute("SELECT 1"))
    c.close()
    log.attempt("closed connection", lambda: c.execute("SELECT 1"))
    return log


def startup_pragmas(mod, path):
    log = Log()
    c = mod.connect(path, timeout=10)
    for sql in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA busy_timeout=5000",
        "PRAGMA foreign_keys=ON",
        "PRAGMA cache_size=-2000",
        "PRAGMA temp_store=MEMORY",
        "PRAGMA journal_mode",
        # (PRAGMA foreign_keys reads the arbiter's setting: ForeignKeysTest.)
        "PRAGMA busy_timeout",
    ):
        log.note(sql, c.execute(sql).fetchall())
    c.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
    c.execute("PRAGMA user_version = 7")
    log.note("user_version", c.execute("PRAGMA user_version").fetchall())
    log.note("table_info", c.execute("PRAGMA table_info(t)").fetchall())
    c.commit()
    # A checkpoint at startup or exit answers one row of three columns (its
    # figures are the arbiter's business; it checkpoints by itself).
    cur = c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    log.note("checkpoint", [d[0] for d in cur.description], len(cur.fetchone()))
    # Inside a transaction, pragma reads see the transaction's own changes.
    c.execute("BEGIN IMMEDIATE")
    c.execute("PRAGMA user_version = 9")
    c.execute("CREATE TABLE in_tx(a, b)")
    log.note("in transaction", c.execute("PRAGMA user_version").fetchall(),
             c.execute("PRAGMA table_info(in_tx)").fetchall())
    c.rollback()
    log.note("rolled back", c.execute("PRAGMA user_version").fetchall(),
             c.execute("PRAGMA table_info(in_tx)").fetchall())
    c.close()
    return log


def counting_functions(mod, path):
    """``last_insert_rowid()``, ``changes()`` and ``total_changes()`` read
    after this connection's writes say what they did, outside a
    transaction and after one."""
    log = Log()
    c = mod.connect(path, isolation_level=None)
    counts = "SELECT last_insert_rowid(), changes(), total_changes()"
    log.note("fresh", c.execute(counts).fetchone())
    c.execute("CREATE TABLE p(id INTEGER PRIMARY KEY, v)")
    c.execute("INSERT INTO p VALUES (50, 1)")
    log.note("insert", c.execute(counts).fetchone())
    c.execute("INSERT INTO p(v) VALUES (1), (2), (3)")
    c.execute("DELETE FROM p WHERE v = 1")
    log.note("delete", c.execute(counts).fetchone())
    log.attempt("duplicate", lambda: c.execute("INSERT INTO p VALUES (52, 0)").rowcount)
    log.note("after a failure", c.execute(counts).fetchone())
    c.execute("BEGIN")
    c.execute("UPDATE p SET v = v + 1")
    c.execute("COMMIT")
    log.note("after a transaction", c.execute(counts).fetchone())
    c.close()
    return log


def half_read_cursor(mod, path):
    """A cursor still being read does not hide this connection's own
    writes from its next reads, in a transaction or out of one; the
    half-read cursor goes on with its rows."""
    log = Log()
    c = mod.connect(path, isolation_level=None)
    c.execute("CREATE TABLE h(x)")
    c.executemany("INSERT INTO h VALUES (?)", [(1,), (2,), (3,)])
    cur = c.execute("SELECT x FROM h ORDER BY x")
    log.note("first", cur.fetchone())
    c.execute("DELETE FROM h WHERE x = 2")
    log.note("after a delete", c.execute("SELECT x FROM h ORDER BY x").fetchall())
    c.execute("BEGIN")
    c.execute("INSERT INTO h VALUES (4)")
    c.execute("COMMIT")
    log.note("after a transaction", c.execute("SELECT x FROM h ORDER BY x").fetchall())
    log.note("the rest", len(cur.fetchall()) >= 1)
    log.note("and then", c.execute("SELECT count(*) FROM h").fetchone())
    c.close()
    return log


def optimize_before_close(mod, path):
    """A bare ``PRAGMA optimize`` where SQLite finds an ANALYZE due (an
    index the planner used), as programs run it before they close."""
    log = Log()
    c = mod.connect(path)
    c.execute("CREATE TABLE o(id INTEGER PRIMARY KEY, k INTEGER)")
    c.execute("CREATE INDEX o_k ON o(k)")
    with c:
        c.executemany("INSERT INTO o(k) VALUES (?)", [(i % 50,) for i in range(2000)])
    log.note("by index", c.execute("SELECT count(*) FROM o WHERE k = 7").fetchall())
    log.attempt("optimize", lambda: c.execute("PRAGMA optimize").fetchall())
    c.close()
    return log


def backup_by_vacuum_into(mod, path):
    """``VACUUM INTO`` as programs make a backup: outside a transaction,
    a copy of the file (it only reads it); inside one, refused."""
    import os

    log = Log()
    c = mod.connect(path)
    c.execute("CREATE TABLE v(x)")
    with c:
        c.executemany("INSERT INTO v VALUES (?)", [(i,) for i in range(3)])
    copy = path + ".copy"
    c.execute("VACUUM INTO ?", (copy,))
    log.note("in transaction after", c.in_transaction)
    log.note("copied", std.connect(copy).execute("SELECT count(*) FROM v").fetchall())
    c.execute("INSERT INTO v VALUES (9)")
    log.attempt("inside a transaction", lambda: c.execute("VACUUM INTO ?", (path + ".again",)))
    c.rollback()
    log.note("left", os.path.exists(path + ".again") and os.path.getsize(path + ".again") > 0)
    c.close()
    return log


SCRIPTS = [
    backup_by_vacuum_into,
    optimize_before_close,
    half_read_cursor, autocommit, implicit_transactions, explicit_transactions, many_and_scripts, rows_and_values, errors,
    startup_pragmas, counting_functions,
]
