"""The drop-in's transactions begin on the arbiter with their first
statement (one round trip for both): what a caller of sqlite3 relies on
still holds."""

import json
import signal
import sys
import threading
import time
import unittest

import support
from support import ArbiterTest

import scribe_client.sqlite3 as dropin


class DeferredBeginTest(ArbiterTest):
    def setUp(self):
        super().setUp()
        support.set_env(self, "SCRIBE_BIN", support.SCRIBE)
        support.lease_for_a_minute(self.db)
        # A write waits up to 120 s for the arbiter: failing at once is
        # failing well within that, however busy the machine.
        self.c = dropin.connect(self.db, isolation_level=None, timeout=120)
        self.addCleanup(self.c.close)
        self.c.execute("CREATE TABLE t(x)")

    def test_the_first_statement_carries_the_begin_and_reads_in_the_session(self):
        c = self.c
        c.execute("BEGIN IMMEDIATE")
        self.assertTrue(c.in_transaction)
        c.execute("COMMIT")  # nothing ran: nothing was begun on the arbiter
        self.assertFalse(c.in_transaction)
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO t VALUES (1)")
        # Session ids count the arbiter's begins: this is its first.
        self.assertEqual(c._remote.session, 1)
        c.execute("ROLLBACK")
        c.execute("BEGIN IMMEDIATE")
        # A read first: it runs in the session (it sees the transaction's
        # snapshot, taken with the writer held), not on the local reader.
        self.assertEqual(c.execute("SELECT count(*) FROM t").fetchone(), (0,))
        self.assertEqual(c._remote.session, 2)
        # The read began the session on the arbiter (the local reader would
        # have begun nothing): it holds the writer now.
        status = support.scribe_cli(self.db, "--json", "status")
        self.assertIsNotNone(json.loads(status.stdout)["session"], status.stderr)
        c.execute("INSERT INTO t VALUES (2)")
        self.assertEqual(c.execute("SELECT x FROM t").fetchall(), [(2,)])
        c.execute("COMMIT")
        self.assertEqual(c.execute("SELECT x FROM t").fetchall(), [(2,)])

    def test_an_interrupted_call_leaves_no_session_holding_the_writer(self):
        # A signal handler that raises (a request's timeout, Ctrl-C) while a
        # transaction's first statement waits for the writer: the begin
        # sent with it went on to hold the writer for its whole lease once
        # served (a minute here), and every other writer waited.
        holder = dropin.connect(self.db, isolation_level=None, timeout=120)
        self.addCleanup(holder.close)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO t VALUES (1)")

        class Interrupted(Exception):
            pass

        def on_alarm(signum, frame):
            raise Interrupted()

        old = signal.signal(signal.SIGALRM, on_alarm)
        self.addCleanup(signal.signal, signal.SIGALRM, old)
        c = self.c
        c.execute("BEGIN")
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with self.assertRaises(Interrupted):
            c.execute("INSERT INTO t VALUES (2)")  # waits behind the holder
        signal.setitimer(signal.ITIMER_REAL, 0)
        c.execute("ROLLBACK")
        holder.execute("COMMIT")
        other = dropin.connect(self.db, isolation_level=None, timeout=20)
        self.addCleanup(other.close)
        other.execute("INSERT INTO t VALUES (3)")
        # The interrupted connection goes on, on a new connection.
        c.execute("INSERT INTO t VALUES (4)")
        self.assertEqual(sorted(other.execute("SELECT x FROM t")), [(1,), (3,), (4,)])

    def test_after_a_failed_begin_a_retry_stays_in_the_transaction_or_begins_again(self):
        c = self.c
        out = support.scribe_cli(self.db, "stop", "--hold")
        self.assertEqual(out.returncode, 0, out.stderr)
        c.execute("BEGIN")
        started = time.monotonic()
        with self.assertRaises(dropin.OperationalError) as e:
            c.execute("INSERT INTO t VALUES (1)")  # the begin goes with it, and fails
        self.assertLess(time.monotonic() - started, 30.0)
        self.assertIn("--hold", str(e.exception))
        # As after sqlite3's "locked" in a deferred transaction: the
        # transaction is still open, and a statement run again is in it.
        self.assertTrue(c.in_transaction)
        self.assertEqual(support.scribe_cli(self.db, "start").returncode, 0)
        c.execute("INSERT INTO t VALUES (1)")
        c.execute("INSERT INTO t VALUES (2)")
        c.execute("ROLLBACK")
        self.assertEqual(c.execute("SELECT count(*) FROM t").fetchone(), (0,), "both in the transaction")
        # A loop that says BEGIN IMMEDIATE again after the failure, without
        # a rollback (as it would after sqlite3's failed BEGIN), works too.
        self.assertEqual(support.scribe_cli(self.db, "stop", "--hold").returncode, 0)
        c.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with self.assertRaises(dropin.OperationalError) as e:
            c.execute("SELECT count(*) FROM t")
        self.assertLess(time.monotonic() - started, 30.0)
        self.assertIn("--hold", str(e.exception))
        self.assertEqual(support.scribe_cli(self.db, "start").returncode, 0)
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO t VALUES (3)")
        c.execute("COMMIT")
        self.assertEqual(c.execute("SELECT x FROM t").fetchall(), [(3,)])
        # Without a failure, a second BEGIN is refused, as in sqlite3.
        c.execute("BEGIN")
        with self.assertRaises(dropin.OperationalError):
            c.execute("BEGIN")
        c.execute("ROLLBACK")

    def test_a_statement_that_fails_after_its_begin_keeps_the_transaction(self):
        c = self.c
        c.execute("BEGIN IMMEDIATE")
        with self.assertRaises(dropin.OperationalError):
            c.execute("INSERT INTO missing VALUES (1)")
        self.assertTrue(c.in_transaction, "as in sqlite3, the transaction goes on")
        c.execute("INSERT INTO t VALUES (4)")
        c.execute("COMMIT")
        self.assertEqual(c.execute("SELECT x FROM t").fetchall(), [(4,)])

    def _open(self, **kw):
        """Another connection to the database, closed after the test."""
        c = dropin.connect(self.db, isolation_level=None, **kw)
        self.addCleanup(c.close)
        return c

    def _refusals(self):
        status = support.scribe_cli(self.db, "--json", "status")
        return json.loads(status.stdout)["overloaded"]

    def test_a_refused_begin_is_asked_once_per_statement(self):
        # Another connection's transaction holds the writer; this one's
        # waits 0.3 s at most.
        holder = self._open()
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO t VALUES (0)")
        c = self._open(timeout=0.3)
        for label, run in [
            ("in a transaction", lambda: (c.execute("BEGIN"), c.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)]))),
            ("on its own", lambda: c.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])),
            ("a write", lambda: c.execute("INSERT INTO t VALUES (1)")),
        ]:
            before = self._refusals()
            with self.assertRaises(dropin.OperationalError) as e:
                run()
            self.assertEqual(str(e.exception), "database is locked", label)
            # One refusal: the sets were not tried again one by one, nor
            # the savepoint undone through a second begin.
            self.assertEqual(self._refusals(), before + 1, label)
            c.rollback()
        holder.execute("COMMIT")
        self.assertEqual(c.execute("SELECT x FROM t").fetchall(), [(0,)])

    def test_a_statement_retried_after_begin_immediate_was_refused_holds_the_writer(self):
        # A program retries each statement on "database is locked": after
        # its BEGIN IMMEDIATE (which it saw succeed) the refused read must
        # run again with the writer held, or another writer slips in
        # between its read and its write (a lost update).
        c = self.c
        c.execute("CREATE TABLE c(v INTEGER)")
        c.execute("INSERT INTO c VALUES (0)")
        holder = self._open()
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE c SET v = v + 1")
        b = self._open(timeout=0.3)
        b.execute("BEGIN IMMEDIATE")
        with self.assertRaises(dropin.OperationalError):
            b.execute("SELECT v FROM c")
        self.assertTrue(b.in_transaction, "its BEGIN succeeded: the transaction is still open")
        holder.execute("COMMIT")
        v = b.execute("SELECT v FROM c").fetchone()[0]  # the retry
        self.assertEqual(v, 1)
        # It holds the writer now: nobody else's write gets in.
        other = self._open(timeout=0.3)
        with self.assertRaises(dropin.OperationalError) as e:
            other.execute("UPDATE c SET v = v + 100")
        self.assertEqual(str(e.exception), "database is locked")
        b.execute("UPDATE c SET v = ?", (v + 1,))
        b.execute("COMMIT")
        self.assertEqual(c.execute("SELECT v FROM c").fetchone(), (2,))


class LapsedTest(ArbiterTest):
    def test_a_rollback_after_a_lapsed_transaction_is_no_second_error(self):
        # The arbiter's default lease: 1 s between statements.
        support.set_env(self, "SCRIBE_BIN", support.SCRIBE)
        c = dropin.connect(self.db, isolation_level=None)
        self.addCleanup(c.close)
        c.execute("CREATE TABLE t(x)")
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO t VALUES (1)")
        s = self.client()
        self.lapse(s)
        with self.assertRaises(dropin.Expired):
            c.execute("INSERT INTO t VALUES (2)")
        self.assertFalse(c.in_transaction)
        # A program's `except: conn.execute("ROLLBACK"); raise`: the
        # Expired is what it raises, not "no transaction is active".
        c.execute("ROLLBACK")
        with self.assertRaises(dropin.OperationalError):
            c.execute("ROLLBACK")  # a second one is sqlite3's error again
        self.assertEqual(c.execute("SELECT count(*) FROM t").fetchone(), (0,))
        # Expired from an executemany: the same; after rollback() or any
        # other call, a ROLLBACK is sqlite3's error again.
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO t VALUES (3)")
        self.lapse(s)
        with self.assertRaises(dropin.Expired):
            c.executemany("INSERT INTO t VALUES (?)", [(4,), (5,)])
        c.execute("ROLLBACK")
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO t VALUES (6)")
        self.lapse(s)
        with self.assertRaises(dropin.Expired):
            c.execute("INSERT INTO t VALUES (7)")
        c.rollback()
        with self.assertRaises(dropin.OperationalError):
            c.execute("ROLLBACK")
        self.assertEqual(c.execute("SELECT count(*) FROM t").fetchone(), (0,))
        # The ROLLBACK in a script: its first statement only.
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO t VALUES (8)")
        self.lapse(s)
        with self.assertRaises(dropin.Expired):
            c.execute("INSERT INTO t VALUES (9)")
        c.executescript("ROLLBACK")
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO t VALUES (10)")
        self.lapse(s)
        with self.assertRaises(dropin.Expired):
            c.execute("INSERT INTO t VALUES (11)")
        with self.assertRaises(dropin.OperationalError):
            c.executescript("ROLLBACK; ROLLBACK")
        self.assertEqual(c.execute("SELECT count(*) FROM t").fetchone(), (0,))

    @unittest.skipIf(sys.version_info < (3, 12), "autocommit= is Python 3.12's")
    def test_with_autocommit_false_the_rollback_ends_the_transaction_as_sql_rollback_does(self):
        support.set_env(self, "SCRIBE_BIN", support.SCRIBE)
        c = dropin.connect(self.db, autocommit=False)
        self.addCleanup(c.close)
        c.execute("CREATE TABLE t(x)")
        c.commit()
        c.execute("INSERT INTO t VALUES (1)")
        self.lapse(self.client())
        with self.assertRaises(dropin.Expired):
            c.execute("INSERT INTO t VALUES (2)")
        c.execute("ROLLBACK")
        # As after any SQL ROLLBACK with autocommit=False: no transaction
        # until commit() or rollback(), each write committed alone.
        self.assertFalse(c.in_transaction)
        with self.assertRaises(dropin.OperationalError):
            c.commit()
        c.execute("INSERT INTO t VALUES (3)")
        other = dropin.connect(self.db)
        self.addCleanup(other.close)
        self.assertEqual(other.execute("SELECT x FROM t").fetchall(), [(3,)])

    def lapse(self, s):
        """Until the arbiter has ended the open session."""
        deadline = time.monotonic() + 60
        while s.status().get("session") is None and time.monotonic() < deadline:
            time.sleep(0.01)  # it begins with the first statement's answer
        while s.status().get("session") is not None and time.monotonic() < deadline:
            time.sleep(0.01)


class ConnectionCapTest(ArbiterTest):
    """Past the arbiter's most connections, a drop-in connection waits its
    turn as a write waits for the writer: up to its ``timeout``."""

    def test_a_connection_refused_for_now_waits_its_timeout(self):
        self.foreground("--max-connections", "2")
        held = [dropin.connect(self.db, isolation_level=None, check_same_thread=False) for _ in range(2)]
        for c in held:
            self.addCleanup(c.close)
            c.execute("CREATE TABLE IF NOT EXISTS t(x)")  # each holds a connection now
        late = dropin.connect(self.db, timeout=2)
        self.addCleanup(late.close)
        started = time.monotonic()
        with self.assertRaises(dropin.Overloaded):
            late.execute("INSERT INTO t VALUES (1)")
        # It tried until its timeout was spent, not once.
        self.assertGreater(time.monotonic() - started, 1.9)
        late.rollback()
        # executemany asks for the arbiter's limits first: the same error,
        # the drop-in's class (an sqlite3.OperationalError).
        quick = dropin.connect(self.db, timeout=0.2)
        self.addCleanup(quick.close)
        with self.assertRaises(dropin.Overloaded):
            quick.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])

        patient = dropin.connect(self.db, timeout=120)
        self.addCleanup(patient.close)
        threading.Timer(0.5, held[0].close).start()
        patient.execute("INSERT INTO t VALUES (2)")
        patient.commit()
        self.assertEqual(held[1].execute("SELECT x FROM t").fetchall(), [(2,)])
