"""Differential scripts for what stays on the local connection (see
``dropin_scripts``): the program's progress handler must not move a
write out of its transaction, and a connection carried across ``fork()``
serves each process on its own."""

import os
import sys
import time

from dropin_scripts import Log


def progress_handler_and_transactions(mod, path):
    """A progress handler whose limit has passed (a query time limit, as
    Datasette sets one) leaves the program's write in its transaction: the
    drop-in's classifying compile once failed under it and the write
    committed on its own, past rollback()."""
    log = Log()
    c = mod.connect(path)
    c.execute("CREATE TABLE t(x)")
    c.commit()
    deadline = time.monotonic() - 1
    c.set_progress_handler(lambda: time.monotonic() > deadline, 20)
    log.attempt("insert", lambda: c.execute("INSERT INTO t VALUES (1)").rowcount)
    log.note("in a transaction", c.in_transaction)
    log.attempt("read in it", lambda: c.execute("SELECT count(*) FROM t").fetchall())
    c.set_progress_handler(None, 20)
    c.rollback()
    log.note("after rollback", c.execute("SELECT x FROM t").fetchall())
    c.close()
    return log


def _children(n, work):
    """Forks ``n`` children, each running ``work(i)``; their exit codes."""
    pids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                work(i)
            except BaseException as e:  # noqa: BLE001  (reported by the exit code)
                sys.stderr.write("child %d: %s: %s\n" % (i, type(e).__name__, e))
                code = 1
            os._exit(code)
        pids.append(pid)
    return [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]


def carried_across_fork(mod, path):
    """Children of fork() writing through the connection they inherited
    each write on their own (they once shared one socket and mixed up
    their answers), and a child closing its copy leaves the parent's open
    transaction alone (it once rolled it back)."""
    log = Log()
    c = mod.connect(path, isolation_level=None, timeout=30)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("CREATE TABLE t(who, k)")
    c.execute("INSERT INTO t VALUES (-1, -1)")

    def write(i):
        for k in range(20):
            c.execute("INSERT INTO t VALUES (?, ?)", (i, k))

    log.note("children", _children(4, write))
    log.note("rows", c.execute("SELECT count(*), count(DISTINCT who) FROM t").fetchall())
    c.execute("BEGIN")
    c.execute("INSERT INTO t VALUES (9, 1)")
    log.note("a child closes its copy", _children(1, lambda _: c.close()))
    log.attempt("the parent goes on", lambda: c.execute("INSERT INTO t VALUES (9, 2)").rowcount)
    c.execute("COMMIT")
    log.note("kept", c.execute("SELECT k FROM t WHERE who = 9 ORDER BY k").fetchall())
    c.close()
    return log


SCRIPTS = [progress_handler_and_transactions]
if hasattr(os, "fork") and hasattr(os, "waitstatus_to_exitcode"):  # 3.9 has both
    SCRIPTS.append(carried_across_fork)
