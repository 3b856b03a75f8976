"""Write sessions from Python: ``with db.transaction() as tx``."""

import os
import subprocess
import sys
import time

import support
from scribe_client import Expired, Refused, SqlError
from support import ArbiterTest

SCHEMA = "CREATE TABLE t(id INTEGER PRIMARY KEY, tag TEXT NOT NULL UNIQUE)"


class TransactionTest(ArbiterTest):
    def test_a_block_commits_sees_its_own_writes_and_survives_a_statement_error(self):
        s = self.client()
        s.write(SCHEMA)
        with s.transaction() as tx:
            r = tx.execute("INSERT INTO t(tag) VALUES (?) RETURNING id", ["a"])
            self.assertEqual(r["rows"], [{"id": 1}])
            self.assertEqual(tx.query("SELECT count(*) AS n FROM t"), [{"n": 1}])
            self.assertEqual(s.query("SELECT count(*) AS n FROM t"), [{"n": 0}], "readers do not yet")
            with self.assertRaises(SqlError):
                tx.execute("INSERT INTO t(tag) VALUES ('a')")
            tx.execute("INSERT INTO t(tag) VALUES (:tag)", {"tag": b"\x00blob"})
        self.assertGreater(tx.receipt["seq"], 1)
        s.wait_for(tx.receipt["seq"])
        self.assertEqual(s.query("SELECT count(*) AS n FROM t"), [{"n": 2}])

    def test_a_statement_failing_under_or_fail_says_the_rows_it_changed_stand(self):
        # SQLite keeps what a statement failing under FAIL changed before
        # the failure; "wrote nothing" would invite running it again.
        s = self.client()
        s.write(SCHEMA)
        s.write("INSERT INTO t(tag) VALUES ('c')")
        with s.transaction() as tx:
            with self.assertRaises(SqlError) as e:
                tx.execute("INSERT OR FAIL INTO t(tag) VALUES ('a'), ('b'), ('c'), ('d')")
            said = str(e.exception)
            self.assertIn("it changed 2 rows before it failed, which stand", said)
            self.assertNotIn("wrote nothing", said)
            self.assertIn("UNIQUE constraint failed: t.tag", said)
            # Under ABORT, SQLite undoes the statement, its trigger's rows
            # too: it did write nothing (though SQLite's change count rose).
            tx.execute("CREATE TABLE log(tag)")
            tx.execute("CREATE TRIGGER logged AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.tag); END")
            with self.assertRaises(SqlError) as e:
                tx.execute("INSERT INTO t(tag) VALUES ('e'), ('c')")
            self.assertIn("this statement wrote nothing", str(e.exception))
            self.assertEqual(tx.query("SELECT count(*) AS n FROM log"), [{"n": 0}])
        s.wait_for(tx.receipt["seq"])
        rows = s.query("SELECT tag FROM t ORDER BY tag")
        self.assertEqual([r["tag"] for r in rows], ["a", "b", "c"])

    def test_an_exception_rolls_the_block_back(self):
        s = self.client()
        s.write(SCHEMA)
        with self.assertRaises(KeyError):
            with s.transaction() as tx:
                tx.execute("INSERT INTO t(tag) VALUES ('gone')")
                raise KeyError("the caller's own failure")
        self.assertEqual(s.write("INSERT INTO t(tag) VALUES ('next')")["seq"], 2)
        s.wait_for(2)
        self.assertEqual(s.query("SELECT tag FROM t"), [{"tag": "next"}])

    def test_closing_the_client_ends_its_open_transaction_as_expired(self):
        s = self.client()
        s.write(SCHEMA)
        tx = s.transaction()
        tx.begin()
        tx.execute("INSERT INTO t(tag) VALUES ('before close')")
        s.close()
        # Its connection is gone, and the session with it: Expired (run
        # again), not a protocol error from a new connection.
        with self.assertRaises(Expired):
            tx.execute("INSERT INTO t(tag) VALUES ('after close')")
        with self.assertRaises(Expired):
            tx.commit()
        self.assertEqual(s.query("SELECT count(*) AS n FROM t"), [{"n": 0}])
        # A string is not a list of statements.
        with self.assertRaises(TypeError):
            s.batch("INSERT INTO t(tag) VALUES ('x')")

    def test_a_write_outside_this_thread_s_transaction_is_refused_at_once(self):
        # It waited for the thread's own session, which lapsed; it then
        # committed outside it, and run_transaction ran the function again
        # (20 runs and 20 rows 'out' in 29 s, none 'in').
        import threading

        s = self.client()
        s.write(SCHEMA)
        runs = []

        def fn(tx):
            runs.append(1)
            tx.execute("INSERT INTO t(tag) VALUES ('in')")
            s.write("INSERT INTO t(tag) VALUES ('out')")

        with self.assertRaises(Refused) as e:
            s.run_transaction(fn)
        self.assertIn("tx.execute()", str(e.exception))
        self.assertEqual(len(runs), 1)
        with s.transaction() as tx:
            with self.assertRaises(Refused):
                s.transaction().begin()
            with self.assertRaises(Refused):
                s.migrate([(1, "one", "CREATE TABLE m(x)")])
            tx.execute("INSERT INTO t(tag) VALUES ('in')")
            # Another thread's write waits for the transaction, as before.
            other = threading.Thread(target=s.write, args=("INSERT INTO t(tag) VALUES ('other')",))
            other.start()
        other.join(120)
        self.assertFalse(other.is_alive())
        s.write("INSERT INTO t(tag) VALUES ('after')")
        # One begun here and committed on another thread (a pool's worker)
        # leaves nothing behind: this thread writes on.
        tx = s.transaction().begin()
        tx.execute("INSERT INTO t(tag) VALUES ('handed over')")
        worker = threading.Thread(target=tx.commit)
        worker.start()
        worker.join(120)
        s.write("INSERT INTO t(tag) VALUES ('last')")
        s.wait_for(s.current_seq())
        tags = sorted(r["tag"] for r in s.query("SELECT tag FROM t"))
        self.assertEqual(tags, ["after", "handed over", "in", "last", "other"])

    def test_an_idle_session_lapses_and_says_so(self):
        self.foreground("--session-idle", "5s", "--session-total", "300s")
        s = self.client()
        s.write(SCHEMA)
        tx = s.transaction().begin()
        tx.execute("INSERT INTO t(tag) VALUES ('idle')")
        deadline = time.monotonic() + 20
        while s.status().get("session") is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        with self.assertRaises(Expired) as caught:
            tx.execute("SELECT 1")
        self.assertIn("idle", str(caught.exception))
        self.assertEqual(s.query("SELECT count(*) AS n FROM t"), [{"n": 0}])

    def test_a_statement_that_outlasts_the_call_timeout_ends_the_session_as_expired(self):
        # A query that never ends (the arbiter's lease stops it): the
        # client gives up at its call timeout and closes the session's
        # connection, which rolls the session back. The outcome is known:
        # Expired (it said Timeout, "may or may not have happened", and
        # run_transaction did not run it again).
        # The statement holds the writer until the session's total lease
        # ends it (the closed connection does not stop a statement that
        # is running).
        self.foreground("--session-idle", "300s", "--session-total", "3s")
        s = self.client(call_timeout=1.0)
        s.write(SCHEMA)
        tx = s.transaction().begin()
        tx.execute("INSERT INTO t(tag) VALUES ('before')")
        forever = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
        with self.assertRaises(Expired) as caught:
            tx.execute(forever)
        self.assertIn("nothing of it was written", str(caught.exception))
        with self.assertRaises(Expired):
            tx.commit()
        # Rolled back: another write goes through once the lease has
        # stopped the statement, and 'before' is not in the file.
        other = self.client(call_timeout=60.0)
        other.write("INSERT INTO t(tag) VALUES ('after')")
        self.assertEqual(
            sorted(r["tag"] for r in other.query("SELECT tag FROM t")), ["after"]
        )

    def test_four_processes_claim_every_task_once(self):
        s = self.client()
        s.write("CREATE TABLE tasks(id INTEGER PRIMARY KEY, status TEXT NOT NULL)")
        s.write("CREATE TABLE runs(task INTEGER NOT NULL UNIQUE, worker TEXT NOT NULL)")
        s.batch([("INSERT INTO tasks(status) VALUES ('ready')",)] * 120)
        env = dict(os.environ, SCRIBE_BIN=support.SCRIBE)
        env.pop("SCRIBE_AUTOSTART", None)
        claimer = os.path.join(support.HERE, "py_claimer.py")
        procs = [
            subprocess.Popen(
                [sys.executable, claimer, self.db, "w%d" % n],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for n in range(4)
        ]
        claimed = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
            self.assertNotIn("locked", err)
            claimed += [int(line) for line in out.split()]
        self.assertEqual(sorted(claimed), list(range(1, 121)), "each task claimed once")
        self.assertEqual(s.query("SELECT count(*) AS n FROM runs"), [{"n": 120}])


class RolledBackTest(ArbiterTest):
    def test_a_statement_sqlite_rolls_back_with_ends_the_transaction_for_good(self):
        # INSERT OR ROLLBACK: SQLite rolls the whole transaction back with
        # the statement's error. A function that catches it and goes on
        # must not be run again and again (it would meet the same error)
        # nor pass for committed.
        s = self.client()
        s.write(SCHEMA)
        s.write("INSERT INTO t(tag) VALUES ('x')")
        runs = []

        def work(tx):
            runs.append(1)
            tx.execute("INSERT INTO t(tag) VALUES ('a')")
            try:
                tx.execute("INSERT OR ROLLBACK INTO t(tag) VALUES ('x')")
            except SqlError as e:
                self.assertTrue(e.rolled_back, e)
            tx.execute("INSERT INTO t(tag) VALUES ('b')")

        with self.assertRaises(SqlError) as e:
            s.run_transaction(work)
        self.assertEqual(e.exception.sqlite_code, 2067)
        self.assertEqual(len(runs), 1)
        with self.assertRaises(SqlError):
            with s.transaction() as tx:
                try:
                    tx.execute("INSERT OR ROLLBACK INTO t(tag) VALUES ('x')")
                except SqlError:
                    pass  # swallowed: the block's end raises it again
        self.assertEqual(s.query("SELECT tag FROM t"), [{"tag": "x"}])

    def test_a_block_that_rolls_back_after_the_error_passes_and_the_object_begins_anew(self):
        s = self.client()
        s.write(SCHEMA)
        s.write("INSERT INTO t(tag) VALUES ('x')")

        def skip(tx):
            try:
                tx.execute("INSERT OR ROLLBACK INTO t(tag) VALUES ('x')")
            except SqlError:
                tx.rollback()
                return "skipped"
            return "written"

        self.assertEqual(s.run_transaction(skip), "skipped")
        tx = s.transaction()
        with tx:
            with self.assertRaises(SqlError):
                tx.execute("INSERT OR ROLLBACK INTO t(tag) VALUES ('x')")
            tx.rollback()
        with tx:  # the same object, a new session
            tx.execute("INSERT INTO t(tag) VALUES ('y')")
        self.assertEqual(s.query("SELECT count(*) AS n FROM t"), [{"n": 2}])
