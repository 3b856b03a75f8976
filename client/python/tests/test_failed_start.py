"""An arbiter whose start fails (here a migration at open) records why in
its lock record, and auto-start holds back a while, saying why at once.
Before, a ``Scribe`` retried for its whole ``retry_for``, starting an
arbiter every half second (45 in 30 s), each applying the migrations
again; the drop-in did the same within its timeout."""

import os
import re
import sqlite3
import time

import support
from scribe_client import Unavailable
from scribe_client import sqlite3 as dropin
from support import ArbiterTest


class FailedStartTest(ArbiterTest):
    def starts(self):
        try:
            with open(self.db + ".scribe.log", encoding="utf-8", errors="replace") as f:
                return f.read().count("applying migrations at open")
        except OSError:
            return 0

    def test_a_failed_start_is_raised_at_once_and_starts_no_other(self):
        steps = support.migrations_at_open(self.db, os.path.join(self.dir, "m"), {
            "0001_t.sql": "CREATE TABLE t(x);",
            "0002_u.sql": "INSERT INTO nope VALUES (1);",
        })
        s = self.client(retry_for=60.0)
        with self.assertRaises(Unavailable) as e:
            s.write("INSERT INTO t VALUES (1)")
        self.assertIn("no such table: nope", str(e.exception))
        self.assertEqual(self.starts(), 1)
        with self.assertRaises(Unavailable) as e:
            s.write("INSERT INTO t VALUES (1)")
        self.assertIn("its arbiter failed to start", str(e.exception))
        self.assertIn("no such table: nope", str(e.exception))
        with self.assertRaises(Unavailable) as e:
            s.status()
        self.assertIn("no such table: nope", str(e.exception))
        conn = dropin.connect(self.db, timeout=60.0, scribe_bin=support.SCRIBE)
        self.addCleanup(conn.close)
        with self.assertRaises(sqlite3.OperationalError) as e:
            conn.execute("INSERT INTO t VALUES (1)")
        self.assertIn("no such table: nope", str(e.exception))
        self.assertEqual(self.starts(), 1, "no arbiter was started again")
        # Mended in place: the next write starts one at once.
        with open(os.path.join(steps, "0002_u.sql"), "w") as f:
            f.write("CREATE TABLE nope(x);")
        s.write("INSERT INTO t VALUES (2)")
        self.assertEqual(self.starts(), 2)
        self.assertEqual(sqlite3.connect(self.db).execute("SELECT x FROM t").fetchall(), [(2,)])

    def test_an_older_failure_holds_nothing_back_and_status_still_tells_it(self):
        support.migrations_at_open(self.db, os.path.join(self.dir, "m"), {
            "0001_t.sql": "INSERT INTO nope VALUES (1);",
        })
        s = self.client(retry_for=0)
        with self.assertRaises(Unavailable):
            s.write("CREATE TABLE t(x)")
        # Its record, aged a minute (the hold lasts 10 s).
        lock = self.db + ".scribe.lock"
        with open(lock) as f:
            text = f.read()
        aged = int(time.time() * 1000) - 60_000
        with open(lock, "w") as f:
            f.write(re.sub(r"failed_at=\d+", "failed_at=%d" % aged, text))
        with self.assertRaises(Unavailable) as e:
            s.status()
        self.assertIn("none was asked to start; its last start failed 60 s ago", str(e.exception))
        self.assertIn("no such table: nope", str(e.exception))
        with self.assertRaises(Unavailable):
            s.write("CREATE TABLE t(x)")
        self.assertEqual(self.starts(), 2, "started again, not held back")


class MovedDirectoryTest(ArbiterTest):
    def test_a_write_under_a_moved_directory_fails_at_once(self):
        # The program holds the old name; no arbiter can start there. Each
        # write waited out its whole timeout, trying to start one (a
        # writer with timeout=30 crawled at one statement per 30 s).
        os.mkdir(os.path.join(self.dir, "d"))
        db = os.path.join(self.dir, "d", "app.db")
        moved = os.path.join(self.dir, "moved")
        self.dbs += [db, os.path.join(moved, "app.db")]
        c = dropin.connect(db, timeout=60, isolation_level=None, scribe_bin=support.SCRIBE)
        self.addCleanup(c.close)
        c.execute("CREATE TABLE t(x)")
        c.execute("INSERT INTO t VALUES (1)")
        os.rename(os.path.dirname(db), moved)
        # Its arbiter notices within a second and stops (calls meanwhile
        # are told the file moved, at once).
        deadline = time.monotonic() + 60
        while support.lock_held(os.path.join(moved, "app.db")):
            self.assertLess(time.monotonic(), deadline, "the arbiter did not stop")
            time.sleep(0.01)
        for _ in range(2):
            started = time.monotonic()
            with self.assertRaises(dropin.OperationalError) as e:
                c.execute("INSERT INTO t VALUES (2)")
            self.assertLess(time.monotonic() - started, 30.0, "it waited out its timeout")
        self.assertIn("no longer exists", str(e.exception))
        other = sqlite3.connect(os.path.join(moved, "app.db"))
        self.addCleanup(other.close)
        self.assertEqual(other.execute("SELECT x FROM t").fetchall(), [(1,)])
