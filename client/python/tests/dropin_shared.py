"""One connection shared by threads (``check_same_thread=False``, as
SQLAlchemy's and other pools share one): run as a script, under either
module, so that a deadlock fails its test by a timeout instead of
freezing the test process.

``python3 dropin_shared.py std|dropin PATH`` prints what it observed."""

import sys
import threading

THREADS = 4
ROUNDS = 60


def run(mod, path):
    out = []
    c = mod.connect(path, check_same_thread=False, isolation_level=None)
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)")

    def autocommit(i):
        for k in range(ROUNDS):
            # Texts of their own, so that each is classified afresh while
            # the other threads read rows here. (No function of the
            # program's in them: the standard module itself deadlocks when
            # one runs in one thread while another reads rows.)
            c.execute("INSERT INTO t(v) VALUES (%d)" % (i * 1000 + k))
            c.execute("SELECT count(*) FROM t WHERE v = %d" % (i * 1000 + k)).fetchone()
            for _ in c.execute("SELECT v FROM t WHERE v <= %d" % (i * 1000 + k)):
                pass

    def registering():
        # The program's functions registered while the others classify.
        for k in range(ROUNDS):
            c.create_function("f%d" % k, 1, abs)

    threads = [threading.Thread(target=autocommit, args=(i,)) for i in range(THREADS)]
    threads.append(threading.Thread(target=registering))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # A function of the program's own, in a read that runs here.
    c.create_function("twice", 1, lambda x: 2 * x, deterministic=True)
    out.append(("autocommit", c.execute("SELECT count(*), sum(twice(v)) FROM t").fetchone()))
    c.close()

    # The legacy transactions: one transaction the threads share, which
    # the last commit() ends. Each statement under the program's own lock:
    # sqlite3's implicit BEGIN is not atomic between threads (two of them
    # beginning at once fail with "cannot start a transaction within a
    # transaction"), so only turns taken make a result to compare.
    c = mod.connect(path, check_same_thread=False)
    turn = threading.Lock()

    def shared(i):
        for k in range(ROUNDS):
            with turn:
                c.execute("INSERT INTO t(v) VALUES (?)", (100000 + i * 1000 + k,))
            with turn:
                c.execute("SELECT count(*) FROM t WHERE v >= 100000 AND v < %d" % (100000 + k)).fetchone()

    threads = [threading.Thread(target=shared, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.append(("in a transaction", c.in_transaction))
    c.commit()
    out.append(("shared", c.execute("SELECT count(*), sum(v) FROM t WHERE v >= 100000").fetchone()))
    c.close()
    return out


if __name__ == "__main__":
    if sys.argv[1] == "std":
        import sqlite3 as module
    else:
        import scribe_client.sqlite3 as module
    for line in run(module, sys.argv[2]):
        print(repr(line))
