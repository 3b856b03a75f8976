"""``executemany`` scripts for the differential test (see
``dropin_scripts``): the drop-in sends the parameter sets in calls of up
to a thousand, and must still observe what sqlite3's one-at-a-time loop
does, a failure part-way included."""

import os

from dropin_scripts import SCHEMA, Log


def rows(n, start=0):
    return [("k%05d" % i, i) for i in range(start, start + n)]


def count(mod, path, query="SELECT count(*), coalesce(sum(n), 0) FROM t"):
    """Rows committed, as another connection sees them."""
    other = mod.connect(path)
    try:
        return other.execute(query).fetchone()
    finally:
        other.close()


def many_in_a_transaction(mod, path):
    log = Log()
    c = mod.connect(path)
    c.execute(SCHEMA)
    c.commit()
    # More than one call's worth: 2,500 sets.
    cur = c.executemany("INSERT INTO t(tag, n) VALUES (?, ?)", rows(2500))
    log.note("inserted", cur.rowcount, c.in_transaction, c.total_changes)
    log.note("inside", c.execute("SELECT count(*), sum(n) FROM t").fetchone())
    log.note("not yet outside", count(mod, path))
    cur = c.executemany("UPDATE t SET n = n + 1 WHERE n % ? = 0", [(2,), (3,), (1000,)])
    log.note("updated", cur.rowcount, c.total_changes)
    c.commit()
    log.note("committed", count(mod, path), c.in_transaction)
    cur = c.executemany("INSERT INTO t(tag, n) VALUES (:tag, :n)", ({"tag": "g%d" % i, "n": i} for i in range(3)))
    log.note("named, from a generator", cur.rowcount)
    c.rollback()
    log.note("rolled back", count(mod, path))
    log.note("none", c.executemany("INSERT INTO t(tag, n) VALUES (?, ?)", []).rowcount, c.in_transaction)
    c.close()
    return log


def many_failing_part_way(mod, path):
    log = Log()
    c = mod.connect(path)
    c.execute(SCHEMA)
    c.executemany("INSERT INTO t(tag, n) VALUES (?, ?)", [("dup", 0)])
    c.commit()
    # The 1,501st set (in the second call) repeats a tag: those before it
    # stay in the transaction, those after it never run.
    sets = rows(1500) + [("dup", 1)] + rows(10, 5000)
    cur = c.cursor()
    cur.execute("INSERT INTO t(tag, n) VALUES ('one', 1)")
    log.attempt("unique", lambda: cur.executemany("INSERT INTO t(tag, n) VALUES (?, ?)", sets))
    log.note("rowcount after a failure", cur.rowcount)
    log.note("after unique", c.in_transaction, c.execute("SELECT count(*) FROM t").fetchone(), c.total_changes)
    c.rollback()
    log.note("rolled back", count(mod, path))
    # A set of the wrong size, and a value sqlite3 cannot bind.
    log.attempt("count", lambda: c.executemany("INSERT INTO t(tag, n) VALUES (?, ?)", rows(3) + [("x",)]))
    log.note("after count", c.execute("SELECT count(*) FROM t").fetchone(), c.total_changes)
    log.attempt("type", lambda: c.executemany("INSERT INTO t(tag, n) VALUES (?, ?)", rows(2, 10) + [("y", object())]))
    log.note("after type", c.execute("SELECT count(*) FROM t").fetchone())
    c.commit()
    log.note("committed", count(mod, path))
    log.attempt("check", lambda: c.executemany("INSERT INTO t(tag, n) VALUES (?, ?)", [("c1", 1), ("c2", -1)]))
    c.rollback()
    c.close()
    return log


def many_in_autocommit(mod, path):
    log = Log()
    c = mod.connect(path, isolation_level=None)
    c.execute(SCHEMA)
    cur = c.executemany("INSERT INTO t(tag, n) VALUES (?, ?)", rows(1200))
    log.note("inserted", cur.rowcount, c.in_transaction, count(mod, path))
    # Each set commits on its own in sqlite3: those before the failing one
    # are written.
    log.attempt("unique", lambda: c.executemany("INSERT INTO t(tag, n) VALUES (?, ?)", rows(5, 2000) + rows(1) + rows(5, 3000)))
    log.note("after unique", c.in_transaction, count(mod, path))

    def broken():
        yield from rows(4, 4000)
        raise ValueError("the caller's generator failed")

    log.attempt("generator", lambda: c.executemany("INSERT INTO t(tag, n) VALUES (?, ?)", broken()))
    log.note("after generator", c.in_transaction, count(mod, path))
    # OR ROLLBACK undoes the transaction a failing set is in: in sqlite3
    # that is the set's own; the sets before it stay written.
    log.attempt(
        "or rollback",
        lambda: c.executemany("INSERT OR ROLLBACK INTO t(tag, n) VALUES (?, ?)", rows(3, 6000) + rows(1, 6000)),
    )
    log.note("after or rollback", c.in_transaction, count(mod, path), c.total_changes)
    c.execute("BEGIN")
    c.executemany("DELETE FROM t WHERE n = ?", [(i,) for i in range(100)])
    log.note("in an explicit transaction", c.in_transaction, count(mod, path))
    c.execute("ROLLBACK")
    log.note("rolled back", count(mod, path))
    c.close()
    return log


def many_big_values(mod, path):
    """Sets too big for one call of a thousand (18 MB of blobs, 3 MB of
    text): they go in several, in order."""
    log = Log()
    c = mod.connect(path)
    c.execute(SCHEMA)
    blobs = [("b%d" % i, i, bytes([i]) * 600_000) for i in range(30)]
    cur = c.executemany("INSERT INTO t(tag, n, b) VALUES (?, ?, ?)", blobs)
    log.note("blobs", cur.rowcount)
    texts = [{"tag": ("t%d-" % i) + "x" * 300_000, "n": i} for i in range(10)]
    cur = c.executemany("INSERT INTO t(tag, n) VALUES (:tag, :n)", texts)
    log.note("texts", cur.rowcount)
    # Three bytes a character in UTF-8: 2.0M then 3.6M characters are
    # 16.8 MB together, past a frame, though fewer characters than that.
    wide = [("w1-" + "\u6f22" * 2_000_000, 1), ("w2-" + "\u5b57" * 3_600_000, 2)]
    cur = c.executemany("INSERT INTO t(tag, n) VALUES (?, ?)", wide)
    log.note("wide", cur.rowcount)
    c.commit()
    log.note(
        "stored",
        c.execute("SELECT count(*), sum(length(b)), sum(length(tag)), group_concat(n) FROM t").fetchone(),
    )
    c.close()
    return log


def many_values(mod, path):
    """300 values a set: a thousand sets would be past the arbiter's
    --max-values (262,144) in one call."""
    log = Log()
    c = mod.connect(path)
    cols = ", ".join("c%d" % i for i in range(300))
    c.execute("CREATE TABLE w(%s)" % cols)
    sql = "INSERT INTO w VALUES (%s)" % ", ".join("?" * 300)
    sets = [tuple(None if j % 3 else i for j in range(300)) for i in range(1000)]
    log.note("wide sets", c.executemany(sql, sets).rowcount)
    c.commit()
    log.note("stored", c.execute("SELECT count(*), sum(c0), count(c3) FROM w").fetchone())
    c.close()
    return log


def many_slowly_in_a_transaction(mod, path):
    """Sets that come slowly, in a transaction already begun: none may wait
    for the next so long that the transaction's idle lease (2 s here)
    lapses, as it would were each held for the one after it."""
    import time

    with open(path + ".scribe.conf", "w") as f:
        f.write("session-idle = 2s\n")  # read by the arbiter this starts
    log = Log()
    c = mod.connect(path)
    c.execute(SCHEMA)
    c.commit()
    c.execute("INSERT INTO t(tag, n) VALUES ('first', 0)")

    def slowly():
        for i in range(2):
            time.sleep(1.1)
            yield ("s%d" % i, i)

    log.attempt("slow", lambda: c.executemany("INSERT INTO t(tag, n) VALUES (?, ?)", slowly()).rowcount)
    log.attempt("commit", c.commit)
    log.note("stored", count(mod, path))
    c.close()
    return log


def many_edges(mod, path):
    """DDL (no transaction begun), rows of a query as sets (a Row binds
    by position), a set that cannot be encoded part-way."""
    log = Log()
    c = mod.connect(path)
    c.row_factory = mod.Row
    c.executemany("CREATE TABLE IF NOT EXISTS a(x, y)", [(), ()])
    log.note("ddl", c.in_transaction)
    c.executemany("INSERT INTO a VALUES (?, ?)", [(1, "one"), (2, "two")])
    c.commit()
    # No sets, twice: the second finds the text classified already.
    log.note("no sets", [c.executemany("INSERT INTO a VALUES (?, ?)", []).rowcount for _ in range(2)])
    c.commit()
    c.execute("CREATE TABLE b(x, y)")
    c.executemany("INSERT INTO b VALUES (?, ?)", c.execute("SELECT x, y FROM a ORDER BY x").fetchall())
    c.commit()
    log.note("rows as sets", [tuple(r) for r in c.execute("SELECT * FROM b ORDER BY x")])
    c.isolation_level = None
    log.attempt("surrogate", lambda: c.executemany("INSERT INTO b VALUES (?, ?)", [(3, "a"), (4, "b\udcff"), (5, "c")]))
    log.note("after surrogate", c.in_transaction, count(mod, path, "SELECT count(*) FROM b"))
    c.close()
    return log


SCRIPTS = [
    many_edges,
    many_in_a_transaction,
    many_failing_part_way,
    many_in_autocommit,
    many_big_values,
    many_values,
    many_slowly_in_a_transaction,
]

if __name__ == "__main__":  # a quick look at what sqlite3 itself observes
    import sqlite3
    import tempfile

    for script in SCRIPTS:
        with tempfile.TemporaryDirectory() as d:
            for step in script(sqlite3, os.path.join(d, "x.db")):
                print(script.__name__, step)
