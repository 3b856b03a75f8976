"""Differential scripts for how a program may misuse a connection (see
``dropin_scripts``): another thread's ``close()``/``commit()``, calls on
a closed connection or cursor, bad isolation levels; and the module's
own functions and file names that are not UTF-8."""

import os
import threading

from dropin_scripts import SCHEMA, Log


def other_threads_and_closed(mod, path):
    """sqlite3 refuses another thread's close(), commit() and rollback()
    before it touches the transaction, and every call on a closed
    connection or cursor."""
    log = Log()
    c = mod.connect(path)
    c.execute(SCHEMA)
    c.commit()
    c.execute("INSERT INTO t(tag, n) VALUES ('a', 1)")

    def other():
        log.attempt("close elsewhere", c.close)
        log.attempt("commit elsewhere", c.commit)
        log.attempt("rollback elsewhere", c.rollback)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    log.note("still open", c.in_transaction)
    c.execute("INSERT INTO t(tag, n) VALUES ('b', 2)")
    c.commit()
    log.note("both kept", count(mod, path))
    cur, cur2 = c.cursor(), c.cursor()
    cur.close()
    log.attempt("closed cursor execute", lambda: cur.execute("INSERT INTO t(tag, n) VALUES ('c', 3)"))
    log.attempt("closed cursor many", lambda: cur.executemany("INSERT INTO t(tag, n) VALUES (?, 3)", [("d",)]))
    log.attempt("closed cursor script", lambda: cur.executescript("INSERT INTO t(tag, n) VALUES ('e', 3);"))
    c.execute("INSERT INTO t(tag, n) VALUES ('lost', 4)")
    c.close()
    log.attempt("commit after close", c.commit)
    log.attempt("rollback after close", c.rollback)

    def block():
        with c:
            pass

    log.attempt("with after close", block)
    log.attempt("cursor of a closed connection", lambda: cur2.execute("INSERT INTO t(tag, n) VALUES ('f', 5)"))
    log.attempt("close again", c.close)
    log.note("rows", count(mod, path))
    return log


def module_functions_and_levels(mod, path):
    """``sqlite3.adapt`` is the module's function; isolation levels are
    checked and kept in upper case, and a lower-case ``immediate`` takes
    the writer at its begin as the upper-case one does."""
    log = Log()
    log.attempt("adapt", lambda: mod.adapt(1))
    for level in ("BOGUS", 1, "immediate", "Deferred", None, ""):
        log.attempt("level %r" % (level,), lambda: mod.connect(path, isolation_level=level).isolation_level)
    c = mod.connect(path, isolation_level="immediate")
    c.execute(SCHEMA)
    log.attempt("set 1", lambda: setattr(c, "isolation_level", 1))
    log.attempt("set bogus", lambda: setattr(c, "isolation_level", "IMMEDIAT"))
    log.note("kept", c.isolation_level)
    c.execute("INSERT INTO t(tag, n) VALUES ('a', 1)")
    other = mod.connect(path, timeout=0.2)
    log.attempt("writer held", lambda: other.execute("INSERT INTO t(tag, n) VALUES ('b', 2)"))
    other.rollback()
    c.commit()
    log.note("rows", count(mod, path))
    other.close()
    c.close()
    return log


def a_name_that_is_not_utf8(mod, path):
    """A file name's bytes, as sqlite3 takes them, given as a str or as
    a URI."""
    log = Log()
    name = path + os.fsdecode(b"\xe9.db")
    c = mod.connect(name)
    c.execute(SCHEMA)
    c.execute("INSERT INTO t(tag, n) VALUES ('a', 1)")
    c.commit()
    c.close()
    u = mod.connect("file:%s?mode=rw" % name.replace(os.fsdecode(b"\xe9"), "%E9"), uri=True)
    u.execute("INSERT INTO t(tag, n) VALUES ('b', 2)")
    u.commit()
    log.note("rows", u.execute("SELECT tag FROM t ORDER BY tag").fetchall())
    u.close()
    mine = os.fsencode(os.path.basename(path))
    here = sorted(f[len(mine):] for f in os.listdir(os.fsencode(os.path.dirname(path))) if f.startswith(mine))
    log.note("files", [f for f in here if f.endswith(b"\xe9.db")])
    return log


def count(mod, path):
    c = mod.connect(path)
    try:
        return c.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        c.close()


SCRIPTS = [other_threads_and_closed, module_functions_and_levels, a_name_that_is_not_utf8]
