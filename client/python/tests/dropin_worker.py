"""A process written the way programs use the standard sqlite3 module,
importing the drop-in instead:

    python3 dropin_worker.py DB claim-immediate NAME   # BEGIN IMMEDIATE, SELECT, UPDATE, INSERT, COMMIT
    python3 dropin_worker.py DB claim-cas NAME         # with conn: compare-and-set UPDATE by rowcount
    python3 dropin_worker.py DB insert NAME N          # autocommit inserts
    python3 dropin_worker.py DB startup NAME           # startup pragmas, CREATE TABLE IF NOT EXISTS, a write

Prints claimed task ids one per line; exits 1 on any error (printed).
"""

import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import scribe_client.sqlite3 as sqlite3  # noqa: E402

warnings.simplefilter("ignore", sqlite3.ScribeWarning)


def claim_immediate(db, name):
    conn = sqlite3.connect(db, isolation_level=None, timeout=60)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute("SELECT id FROM tasks WHERE status = 'ready' ORDER BY id LIMIT 1").fetchone()
        if row is None:
            conn.execute("COMMIT")
            return
        conn.execute("UPDATE tasks SET status = 'claimed' WHERE id = ?", (row[0],))
        conn.execute("INSERT INTO claims(task, worker) VALUES (?, ?)", (row[0], name))
        conn.execute("COMMIT")
        print(row[0], flush=True)


def claim_cas(db, name):
    conn = sqlite3.connect(db, timeout=60)
    while True:
        row = conn.execute("SELECT id FROM tasks WHERE status = 'ready' ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return
        with conn:
            cur = conn.execute("UPDATE tasks SET status = 'claimed' WHERE id = ? AND status = 'ready'", (row[0],))
            if cur.rowcount != 1:
                continue  # someone else took it: the block commits nothing
            conn.execute("INSERT INTO claims(task, worker) VALUES (?, ?)", (row[0], name))
        print(row[0], flush=True)


def insert(db, name, n):
    conn = sqlite3.connect(db, isolation_level=None, timeout=60)
    for i in range(int(n)):
        conn.execute("INSERT INTO notes(body) VALUES (?)", ("%s-%d" % (name, i),))


def startup(db, name):
    conn = sqlite3.connect(db, timeout=60)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    conn.execute("CREATE INDEX IF NOT EXISTS notes_body ON notes(body)")
    with conn:
        conn.execute("INSERT INTO notes(body) VALUES (?)", (name,))
    print(conn.execute("SELECT count(*) FROM notes WHERE body = ?", (name,)).fetchone()[0])


def main():
    db, mode, name = sys.argv[1], sys.argv[2], sys.argv[3]
    try:
        if mode == "claim-immediate":
            claim_immediate(db, name)
        elif mode == "claim-cas":
            claim_cas(db, name)
        elif mode == "insert":
            insert(db, name, sys.argv[4])
        elif mode == "startup":
            startup(db, name)
        else:
            raise SystemExit("unknown mode " + mode)
    except sqlite3.Error as e:
        print("%s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
