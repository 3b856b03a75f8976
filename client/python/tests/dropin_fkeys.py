"""Differential scripts for foreign keys, which SQLite checks per
connection (``PRAGMA foreign_keys``): each connection's writes are
checked as it set, other connections are not affected, the setting
changes only outside a transaction, and a table rebuilt with the checks
off keeps the rows that point at it."""

import sys

from dropin_scripts import Log

PARENT_CHILD = (
    "CREATE TABLE p(id INTEGER PRIMARY KEY, name TEXT);"
    "CREATE TABLE ch(id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id) ON DELETE CASCADE);"
    "INSERT INTO p VALUES (1, 'one'), (2, 'two');"
    "INSERT INTO ch VALUES (1, 1), (2, 1), (3, 2);"
)


def count(c, table):
    return c.execute("SELECT count(*) FROM %s" % table).fetchone()[0]


def fk_per_connection(mod, path):
    log = Log()
    c = mod.connect(path, isolation_level=None)
    c.executescript(PARENT_CHILD)
    log.note("default", c.execute("PRAGMA foreign_keys").fetchall())
    log.attempt("orphan, unchecked", lambda: c.execute("INSERT INTO ch VALUES (10, 99)").rowcount)
    c.execute("PRAGMA foreign_keys=ON")
    log.note("on", c.execute("PRAGMA foreign_keys").fetchall())
    log.attempt("orphan, checked", lambda: c.execute("INSERT INTO ch VALUES (11, 99)").rowcount)
    other = mod.connect(path, isolation_level=None)
    log.note("another connection", other.execute("PRAGMA foreign_keys").fetchall())
    log.attempt("its orphan", lambda: other.execute("INSERT INTO ch VALUES (12, 98)").rowcount)
    other.close()
    c.execute("DELETE FROM p WHERE id = 2")
    log.note("cascaded", count(c, "ch"), c.execute("SELECT id FROM ch ORDER BY id").fetchall())
    # Inside a transaction the pragma changes nothing.
    c.execute("BEGIN")
    c.execute("PRAGMA foreign_keys=OFF")
    log.note("off inside a transaction", c.execute("PRAGMA foreign_keys").fetchall())
    log.attempt("orphan inside", lambda: c.execute("INSERT INTO ch VALUES (13, 97)").rowcount)
    c.execute("ROLLBACK")
    # SQLite reads a word it does not know as off, and full, extra and a
    # negative number too (boolean pragmas take none of them).
    for value in ("maybe", "1", "full", "yes", "-1", "'on'", "extra", "0x10", "1.5", "no"):
        c.execute("PRAGMA foreign_keys=%s" % value)
        log.note(value, c.execute("PRAGMA foreign_keys").fetchall())
    c.close()
    return log


def fk_table_rebuild(mod, path):
    """The rebuild frameworks' migrations run to change a column (create,
    copy, drop, rename), checks off around it as SQLite's documentation
    says, then a check of the result."""
    log = Log()
    c = mod.connect(path, isolation_level=None)
    c.executescript(PARENT_CHILD)
    c.execute("PRAGMA foreign_keys=ON")
    c.execute("PRAGMA foreign_keys=OFF")
    c.execute("BEGIN")
    c.execute("CREATE TABLE p_new(id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '')")
    c.execute("INSERT INTO p_new(id, name) SELECT id, coalesce(name, '') FROM p")
    c.execute("DROP TABLE p")
    c.execute("ALTER TABLE p_new RENAME TO p")
    log.note("check", c.execute("PRAGMA foreign_key_check").fetchall())
    c.execute("COMMIT")
    c.execute("PRAGMA foreign_keys=ON")
    log.note("children kept", count(c, "ch"))
    log.attempt("orphan after", lambda: c.execute("INSERT INTO ch VALUES (20, 99)").rowcount)
    c.execute("DELETE FROM p WHERE id = 1")
    log.note("cascades again", c.execute("SELECT id FROM ch ORDER BY id").fetchall())
    # The legacy transaction mode: the pragma outside, the rebuild in the
    # transaction the module opens.
    legacy = mod.connect(path)
    legacy.execute("PRAGMA foreign_keys=OFF")
    legacy.execute("DELETE FROM p")
    log.note("unchecked delete", count(legacy, "ch"), legacy.in_transaction)
    legacy.rollback()
    legacy.close()
    c.close()
    return log


def fk_autocommit_false(mod, path):
    """With autocommit=False a transaction is always open: the pragma
    changes nothing."""
    log = Log()
    if sys.version_info < (3, 12):
        log.note("autocommit= is Python 3.12's")
        return log
    c = mod.connect(path, autocommit=False)
    c.executescript(PARENT_CHILD)
    c.commit()
    c.execute("PRAGMA foreign_keys=ON")
    log.note("still", c.execute("PRAGMA foreign_keys").fetchall(), c.in_transaction)
    log.attempt("orphan", lambda: c.execute("INSERT INTO ch VALUES (10, 99)").rowcount)
    c.commit()
    c.close()
    return log


def fk_after_a_refused_write(mod, path):
    """A write refused as locked leaves a deferred transaction open, in
    which the pragma changes nothing."""
    log = Log()
    setup = mod.connect(path, isolation_level=None)
    setup.executescript(PARENT_CHILD)
    setup.close()
    b = mod.connect(path, isolation_level=None, timeout=0.2)
    b.execute("PRAGMA foreign_keys=ON")
    a = mod.connect(path, isolation_level=None)
    a.execute("BEGIN IMMEDIATE")
    a.execute("INSERT INTO p VALUES (3, 'three')")
    b.execute("BEGIN")
    log.attempt("locked", lambda: b.execute("INSERT INTO ch VALUES (10, 99)").rowcount)
    log.note("open", b.in_transaction)
    b.execute("PRAGMA foreign_keys=OFF")
    b.execute("ROLLBACK")
    a.execute("ROLLBACK")
    a.close()
    log.note("after", b.execute("PRAGMA foreign_keys").fetchall())
    log.attempt("orphan", lambda: b.execute("INSERT INTO ch VALUES (11, 99)").rowcount)
    b.close()
    return log


def deferred_schema(mod, path, isolation_level="", references="REFERENCES p(id)"):
    """A connection with foreign keys on, and a parent and a child table
    (the child's key as ``references`` says), committed."""
    c = mod.connect(path, isolation_level=isolation_level)
    c.execute("PRAGMA foreign_keys=ON")
    c.execute("CREATE TABLE p(id INTEGER PRIMARY KEY)")
    c.execute("CREATE TABLE ch(id INTEGER PRIMARY KEY, p INTEGER %s)" % references)
    c.commit()
    return c


def fk_deferred_commit_stays_open(mod, path):
    """A COMMIT that deferred foreign keys refuse leaves the transaction
    open, as SQLite's does: the program may add the missing parent and
    commit again (the drop-in rolled it back, and the second commit wrote
    the parent alone, the child lost); ``with`` rolls it back."""
    log = Log()
    c = deferred_schema(mod, path, references="REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED")
    c.execute("INSERT INTO ch VALUES (1, 7)")
    log.attempt("commit with an orphan", c.commit)
    log.note("still open", c.in_transaction)
    c.execute("INSERT INTO p VALUES (7)")
    log.attempt("commit again", c.commit)
    log.note("kept", c.in_transaction, c.execute("SELECT * FROM ch").fetchall())

    def with_an_orphan():
        with c:
            c.execute("INSERT INTO ch VALUES (2, 8)")

    log.attempt("with", with_an_orphan)
    log.note("after with", c.in_transaction, c.execute("SELECT * FROM ch ORDER BY id").fetchall())
    c.isolation_level = None
    c.execute("BEGIN")
    c.execute("INSERT INTO ch VALUES (3, 9)")
    log.attempt("SQL COMMIT with an orphan", lambda: c.execute("COMMIT"))
    log.note("open after SQL COMMIT", c.in_transaction)
    log.attempt("rollback", c.rollback)
    log.note("rolled back", c.in_transaction, c.execute("SELECT * FROM ch ORDER BY id").fetchall())
    c.close()
    return log


def fk_deferred_by_pragma(mod, path):
    """``PRAGMA defer_foreign_keys=ON`` defers immediate keys to the end of
    the transaction it is said in, and is off again after it (the drop-in
    set it on its local reader, where it deferred nothing, and read it back
    as on)."""
    log = Log()
    c = deferred_schema(mod, path, isolation_level=None)
    c.execute("BEGIN")
    c.execute("PRAGMA defer_foreign_keys=ON")
    log.note("read inside", c.execute("PRAGMA defer_foreign_keys").fetchall())
    log.attempt("orphan, deferred", lambda: c.execute("INSERT INTO ch VALUES (1, 5)").rowcount)
    log.attempt("commit with it", lambda: c.execute("COMMIT"))
    log.note("still open", c.in_transaction)
    c.execute("INSERT INTO p VALUES (5)")
    c.execute("COMMIT")
    log.note("rows", c.execute("SELECT * FROM ch").fetchall())
    c.execute("BEGIN")
    log.note("off again", c.execute("PRAGMA defer_foreign_keys").fetchall())
    log.attempt("orphan, immediate", lambda: c.execute("INSERT INTO ch VALUES (2, 6)").rowcount)
    c.execute("ROLLBACK")
    c.close()
    return log


def fk_deferred_before_the_transaction(mod, path):
    """``PRAGMA defer_foreign_keys=ON`` said outside a transaction holds
    for the next one (with the default isolation level the pragma runs
    before the implicit BEGIN: the usual idiom); the end of a transaction
    turns it off, a read's own included, and a write outside one."""
    log = Log()
    c = deferred_schema(mod, path)
    c.execute("PRAGMA defer_foreign_keys=ON")
    log.note("set", c.execute("PRAGMA defer_foreign_keys").fetchall())
    log.attempt("child first", lambda: c.execute("INSERT INTO ch VALUES (1, 5)").rowcount)
    log.note("inside", c.execute("PRAGMA defer_foreign_keys").fetchall())
    log.attempt("parent", lambda: c.execute("INSERT INTO p VALUES (5)").rowcount)
    log.attempt("commit", c.commit)
    log.note("after", c.in_transaction, c.execute("PRAGMA defer_foreign_keys").fetchall(),
             c.execute("SELECT * FROM ch").fetchall())
    # A read's own transaction ends it too.
    c.execute("PRAGMA defer_foreign_keys=ON")
    log.note("a read", c.execute("SELECT count(*) FROM p").fetchall(),
             c.execute("PRAGMA defer_foreign_keys").fetchall())
    log.attempt("child after a read", lambda: c.execute("INSERT INTO ch VALUES (4, 6)").rowcount)
    c.rollback()
    c.execute("PRAGMA defer_foreign_keys=ON")
    c.rollback()  # with no transaction open: nothing ends
    log.note("after a rollback of nothing", c.execute("PRAGMA defer_foreign_keys").fetchall())
    c.execute("INSERT INTO ch VALUES (2, 5)")
    c.rollback()
    log.note("after rollback", c.execute("PRAGMA defer_foreign_keys").fetchall())
    c.isolation_level = None
    c.execute("PRAGMA defer_foreign_keys=ON")
    log.attempt("autocommit orphan", lambda: c.execute("INSERT INTO ch VALUES (3, 9)").rowcount)
    log.note("after an autocommit write", c.execute("PRAGMA defer_foreign_keys").fetchall())
    c.close()
    return log


SCRIPTS = [
    fk_per_connection, fk_table_rebuild, fk_autocommit_false, fk_after_a_refused_write,
    fk_deferred_commit_stays_open, fk_deferred_by_pragma, fk_deferred_before_the_transaction,
]
