"""A drop-in write whose first try's outcome is unknown (its answer did
not come within the call's deadline) never reports a later refusal as
'database is locked': the first try may still commit."""

import time

import support
from support import ArbiterTest

import scribe_client.errors as dropin_errors
import scribe_client.sqlite3 as dropin


class UnknownOutcomeTest(ArbiterTest):
    def setUp(self):
        super().setUp()
        support.set_env(self, "SCRIBE_BIN", support.SCRIBE)
        support.lease_for_a_minute(self.db)
        self.holder = dropin.connect(self.db, isolation_level=None, timeout=120)
        self.addCleanup(self.holder.close)
        self.holder.execute("CREATE TABLE t(x)")

    def test_a_retry_refused_after_a_try_with_no_answer_reports_the_unknown_outcome(self):
        self.holder.execute("BEGIN IMMEDIATE")
        self.holder.execute("INSERT INTO t VALUES (1)")  # the writer is held from here
        c = dropin.connect(self.db, isolation_level=None, timeout=3.0)
        self.addCleanup(c.close)
        c.execute("SELECT 1").fetchall()
        remote = c._remote
        real_call = remote._call
        deadlines = []

        def call(request, timeout):
            # The first try's answer is given up on at once (as when the
            # arbiter's answer is lost); every later try waits for its
            # answer as long as it likes, so the refusal at the end of
            # the write's own wait is what it hears.
            deadlines.append(timeout)
            return real_call(request, 0.2 if len(deadlines) == 1 else 120.0)

        remote._call = call
        started = time.monotonic()
        with self.assertRaises(dropin.OperationalError) as e:
            c.execute("INSERT INTO t VALUES (2)")
        waited = time.monotonic() - started
        message = str(e.exception)
        self.assertGreaterEqual(len(deadlines), 2, "the write was tried again")
        self.assertNotIn("database is locked", message)
        self.assertIn("may or may not have committed", message)
        self.assertIsInstance(e.exception, dropin.Timeout)
        self.assertLess(waited, 60.0)
        remote._call = real_call
        self.holder.execute("ROLLBACK")
        # The connection goes on: its next write commits.
        c.execute("INSERT INTO t VALUES (3)")
        self.assertIn((3,), c.execute("SELECT x FROM t").fetchall())

    def test_a_write_that_heard_nothing_for_its_whole_timeout_is_not_tried_again(self):
        # Its wait counts from its start: a first try that heard nothing
        # for longer than the connection's timeout has used it up.
        c = dropin.connect(self.db, isolation_level=None, timeout=0.5)
        self.addCleanup(c.close)
        c.execute("SELECT 1").fetchall()
        remote = c._remote
        calls = []

        def call(request, timeout):
            calls.append(request)
            time.sleep(0.6)  # the call's deadline passes with no answer
            raise dropin_errors.Timeout("no answer (simulated)")

        remote._call = call
        with self.assertRaises(dropin.OperationalError):
            c.execute("INSERT INTO t VALUES (4)")
        self.assertEqual(len(calls), 1, "not tried again past its timeout")


if __name__ == "__main__":
    import unittest

    unittest.main()
