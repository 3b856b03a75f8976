"""Differential scripts (see ``dropin_scripts``) for a connection's
``timeout`` while another connection of the same program holds the write
transaction: sqlite3 waits that long for the lock and raises ``database is
locked`` (SQLITE_BUSY), nothing written, and the holder's transaction goes
on. One thread, as a program that forgot a connection in a transaction
would: a wait for the holder to finish could never end well."""

import time

from dropin_scripts import Log

# Short, so the script is quick.
WAIT = 0.2


def failure(fn):
    """The class, message and result code name of what ``fn`` raises, and
    whether it took at least the connection's timeout."""
    started = time.monotonic()
    try:
        fn()
    except Exception as e:  # noqa: BLE001  (the error is the observation)
        waited = time.monotonic() - started >= WAIT * 0.9
        return type(e).__name__, str(e), getattr(e, "sqlite_errorname", None), waited
    return None


def held(mod, path):
    """A connection holding the write transaction (in WAL mode, as the
    arbiter keeps the file). The arbiter started for the file leases a
    transaction for a minute between statements: only the waiter's own
    limit can end a wait, however slow the machine."""
    with open(path + ".scribe.conf", "w") as f:
        f.write("session-idle = 60s\nsession-total = 120s\n")
    holder = mod.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL").fetchall()
    holder.execute("CREATE TABLE IF NOT EXISTS w(x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO w VALUES ('held')")
    return holder


def busy_writes(mod, path):
    log = Log()
    holder = held(mod, path)
    c = mod.connect(path, timeout=WAIT, isolation_level=None)
    log.note("autocommit insert", failure(lambda: c.execute("INSERT INTO w VALUES ('a')")))
    log.note("after it", c.in_transaction)
    # sqlite3's BEGIN IMMEDIATE fails itself; the drop-in's begin goes
    # with the transaction's first statement, which fails the same way
    # (and keeps the transaction open: the program saw its BEGIN succeed).
    log.note("begin immediate", failure(lambda: (c.execute("BEGIN IMMEDIATE"), c.execute("INSERT INTO w VALUES ('i')"))))
    c.rollback()
    log.note("executemany", failure(lambda: c.executemany("INSERT INTO w VALUES (?)", [("m",), ("n",)])))
    # PRAGMA busy_timeout is the same setting as connect()'s timeout.
    d = mod.connect(path, timeout=600, isolation_level=None)
    d.execute("PRAGMA busy_timeout = %d" % int(WAIT * 1000))
    log.note("busy_timeout", d.execute("PRAGMA busy_timeout").fetchone())
    log.note("after the pragma", failure(lambda: d.execute("INSERT INTO w VALUES ('p')")))
    d.close()
    # The holder's transaction was not disturbed: it goes on and commits.
    holder.execute("INSERT INTO w VALUES ('more')")
    holder.execute("COMMIT")
    log.note("committed", holder.execute("SELECT x FROM w ORDER BY rowid").fetchall())
    c.execute("INSERT INTO w VALUES ('after')")
    log.note("then", c.execute("SELECT x FROM w ORDER BY rowid").fetchall())
    c.close()
    holder.close()
    return log


def busy_in_a_transaction(mod, path):
    """sqlite3's implicit transaction begins (deferred) before the write
    fails: it stays open, and the write may be tried again in it."""
    log = Log()
    holder = held(mod, path)
    c = mod.connect(path, timeout=WAIT)
    log.note("first write", failure(lambda: c.execute("INSERT INTO w VALUES ('a')")))
    log.note("open", c.in_transaction)
    # Its reads go on meanwhile (from a snapshot), and nothing of it is
    # on the arbiter: no savepoint to release.
    log.note("a read", c.execute("SELECT count(*) FROM w").fetchall())
    log.note("a pragma", c.execute("PRAGMA user_version").fetchall())
    log.note("release", failure(lambda: c.execute("RELEASE nowhere")))
    holder.execute("COMMIT")
    # The snapshot it read is stale now: the write fails again, as
    # sqlite3's (SQLITE_BUSY_SNAPSHOT), until the transaction is rolled back.
    log.note("after the commit", failure(lambda: c.execute("INSERT INTO w VALUES ('b')")))
    log.note("still open", c.in_transaction)
    c.rollback()
    c.execute("INSERT INTO w VALUES ('b')")
    c.commit()
    log.note("then", c.execute("SELECT x FROM w ORDER BY rowid").fetchall())
    c.close()
    holder.close()
    return log


def busy_immediate_modes(mod, path):
    """isolation_level IMMEDIATE: the implicit BEGIN takes the writer at
    once in sqlite3, and its failure leaves no transaction; a deferred
    one's executemany fails and leaves it open."""
    log = Log()
    holder = held(mod, path)
    c = mod.connect(path, timeout=WAIT, isolation_level="IMMEDIATE")
    log.note("implicit begin", failure(lambda: c.execute("INSERT INTO w VALUES ('a')")))
    log.note("after it", c.in_transaction)
    log.note("implicit, many", failure(lambda: c.executemany("INSERT INTO w VALUES (?)", [("m",)])))
    log.note("after that", c.in_transaction)
    d = mod.connect(path, timeout=WAIT, isolation_level=None)
    d.execute("BEGIN")
    log.note("many", failure(lambda: d.executemany("INSERT INTO w VALUES (?)", [("m",), ("n",)])))
    log.note("open", d.in_transaction)
    d.rollback()
    holder.execute("COMMIT")
    c.execute("INSERT INTO w VALUES ('b')")
    c.commit()
    log.note("then", c.execute("SELECT x FROM w ORDER BY rowid").fetchall())
    for x in (c, d, holder):
        x.close()
    return log


SCRIPTS = [busy_writes, busy_in_a_transaction, busy_immediate_modes]
