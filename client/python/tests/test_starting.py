"""An arbiter that holds the lock but serves nobody yet (opening the
database, applying migrations at open) is waited for as the writer would
be: up to the caller's wait, then "database is locked" (the drop-in) or
``Overloaded`` naming what it does. Before, callers failed after 3 s with
"holds the lock but does not answer"."""

import fcntl
import os
import sqlite3
import struct
import subprocess
import threading
import time

import support
from scribe_client import Overloaded, Unavailable
from scribe_client import sqlite3 as dropin
from scribe_client.starting import starting
from support import LOCK_OFFSET, SCRIBED, ArbiterTest, Paths


class StartingTest(ArbiterTest):
    def hold_wal(self):
        """Holds the lock a previous arbiter of the path holds on a byte of
        the WAL while it drains: a new one waits, deterministically, in its
        "starting" phase until the file is closed."""
        fd = os.open(self.db + "-wal", os.O_RDWR | os.O_CREAT, 0o644)
        lock = struct.pack("@hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, LOCK_OFFSET, 1, 0)
        fcntl.fcntl(fd, getattr(fcntl, "F_OFD_SETLK", 37), lock)
        return fd

    def start_waiting_arbiter(self, *flags):
        p = subprocess.Popen(
            [SCRIBED, "--db", self.db, *flags], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(p)
        deadline = time.monotonic() + 60
        while starting(Paths(self.db)) is None:
            self.assertIsNone(p.poll(), "scribed exited")
            self.assertLess(time.monotonic(), deadline, "no arbiter recorded that it is starting")
            time.sleep(0.01)

    def test_callers_wait_up_to_their_deadline_then_are_told_it_is_starting(self):
        sqlite3.connect(self.db).execute("CREATE TABLE t(x)")
        held = self.hold_wal()
        try:
            self.start_waiting_arbiter()
            s = self.client(call_timeout=1.0, ready_timeout=1.0, retry_for=1.0)
            with self.assertRaises(Overloaded) as e:
                s.write("INSERT INTO t VALUES (1)")
            self.assertIn("is still starting, waiting for the arbiter of the file", str(e.exception))
            self.assertEqual(e.exception.sqlite_code, 5)
            # Its status: starting, at once (it was busy after the wait).
            with self.assertRaises(Unavailable) as e:
                s.status()
            self.assertIn("is starting: waiting for the arbiter of the file", str(e.exception))
            conn = dropin.connect(self.db, timeout=1.0, scribe_bin=support.SCRIBE)
            self.addCleanup(conn.close)
            with self.assertRaises(sqlite3.OperationalError) as e:
                conn.execute("INSERT INTO t VALUES (2)")
            self.assertEqual(str(e.exception), "database is locked")
            # A caller whose wait allows it gets its write in once the
            # arbiter serves.
            done = []

            def write():
                c = dropin.connect(self.db, timeout=60.0, scribe_bin=support.SCRIBE)
                try:
                    c.execute("INSERT INTO t VALUES (3)")
                    c.commit()
                    done.append(True)
                finally:
                    c.close()

            t = threading.Thread(target=write)
            t.start()
        finally:
            os.close(held)
        t.join(90)
        self.assertEqual(done, [True])
        rows = sqlite3.connect(self.db).execute("SELECT x FROM t").fetchall()
        self.assertEqual(rows, [(3,)])

    def test_a_write_to_a_table_its_migrations_at_open_make_waits_for_them(self):
        # Before: "no such table: u" at once, from the drop-in's own check
        # of the file, while the arbiter was about to make it.
        sqlite3.connect(self.db).execute("CREATE TABLE t(x)")
        steps = os.path.join(self.dir, "m")
        os.mkdir(steps)
        with open(os.path.join(steps, "0001_u.sql"), "w") as f:
            f.write("CREATE TABLE u(x);")
        held = self.hold_wal()
        try:
            self.start_waiting_arbiter("--migrations", steps)
            conn = dropin.connect(self.db, timeout=1.0, scribe_bin=support.SCRIBE)
            self.addCleanup(conn.close)
            # Busy until it serves, as a table's creator holding the writer.
            with self.assertRaises(sqlite3.OperationalError) as e:
                conn.execute("INSERT INTO u VALUES (0)")
            self.assertEqual(str(e.exception), "database is locked")
        finally:
            os.close(held)
        conn = dropin.connect(self.db, timeout=60.0, scribe_bin=support.SCRIBE)
        self.addCleanup(conn.close)
        conn.execute("INSERT INTO u VALUES (1)")
        conn.commit()
        self.assertEqual(sqlite3.connect(self.db).execute("SELECT x FROM u").fetchall(), [(1,)])

    def test_a_table_the_next_arbiter_migrates_in_is_written_through_it(self):
        # No arbiter runs; the next one applies a new migration at open
        # that makes the table. Before: "no such table: t" at once, from
        # the drop-in's own look at the file, and none started.
        steps = support.migrations_at_open(self.db, os.path.join(self.dir, "m"), {
            "0001_a.sql": "CREATE TABLE a(x);",
        })
        s = self.client()
        s.write("INSERT INTO a VALUES (1)")
        support.stop_arbiter(self.db)
        with open(os.path.join(steps, "0002_t.sql"), "w") as f:
            f.write("CREATE TABLE t(x);")
        conn = dropin.connect(self.db, timeout=30.0, scribe_bin=support.SCRIBE)
        self.addCleanup(conn.close)
        conn.execute("INSERT INTO t VALUES (2)")
        conn.commit()
        self.assertEqual(sqlite3.connect(self.db).execute("SELECT x FROM t").fetchall(), [(2,)])

    def test_a_misspelt_table_with_no_arbiter_running_starts_none(self):
        # Only an arbiter with migrations at open may make a missing table:
        # without them, sqlite3's error at once, and no arbiter started for
        # it (nor "Unavailable" while a stop is in force).
        sqlite3.connect(self.db).execute("CREATE TABLE a(x)")
        conn = dropin.connect(self.db, timeout=5.0, scribe_bin=support.SCRIBE)
        self.addCleanup(conn.close)
        for sql in ("SELECT * FROM itemz", "INSERT INTO itemz VALUES (1)"):
            with self.assertRaises(sqlite3.OperationalError) as e:
                conn.execute(sql)
            self.assertEqual(str(e.exception), "no such table: itemz")
        self.assertFalse(support.lock_held(self.db))
