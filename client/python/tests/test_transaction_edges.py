"""Write sessions from Python at their edges (helper 99): a commit whose
outcome no arbiter can tell, a fork inside a transaction, one abandoned
open, threads that come and go, and functions that run none of their
body."""

import gc
import os
import threading
import time

import support
from scribe_client import Expired, ProtocolError, Refused, Timeout
from support import ArbiterTest

SCHEMA = "CREATE TABLE t(id INTEGER PRIMARY KEY, tag TEXT NOT NULL UNIQUE)"


def tags(s):
    return sorted(r["tag"] for r in s.query("SELECT tag FROM t"))


class TransactionEdgesTest(ArbiterTest):
    def test_a_commit_no_arbiter_can_tell_of_is_a_timeout_with_its_key(self):
        """Asked by key while no arbiter answers, the outcome is unknown:
        ``Timeout`` with the key, not ``Unavailable`` ("nothing was
        written", after which ``run_transaction`` ran it again: applied
        twice). Asked again once one answers: the receipt, or ``Expired``
        for a key nothing committed with."""
        s = self.client(retry_for=1.0)
        s.write(SCHEMA)
        with s.transaction() as tx:
            tx.execute("INSERT INTO t(tag) VALUES ('once')")
            tx.commit(key="tx-once")
        self.assertEqual(support.scribe_cli(self.db, "stop", "--hold").returncode, 0)
        with self.assertRaises(Timeout) as cm:
            s.commit_outcome("tx-once")
        self.assertEqual(cm.exception.key, "tx-once")
        self.assertIn("unknown", str(cm.exception))
        self.assertEqual(support.scribe_cli(self.db, "start").returncode, 0)
        self.assertEqual(s.commit_outcome("tx-once")["seq"], tx.receipt["seq"])
        with self.assertRaises(Expired):
            s.commit_outcome("tx-never")
        self.assertEqual(tags(s), ["once"])

    def test_a_forked_child_cannot_use_or_end_its_parents_transaction(self):
        s = self.client()
        s.write(SCHEMA)
        with s.transaction() as tx:
            tx.execute("INSERT INTO t(tag) VALUES ('parent-1')")
            pid = os.fork()
            if pid == 0:  # the child: every use refused, the block too
                code = 0
                try:
                    tx.execute("INSERT INTO t(tag) VALUES ('child')")
                    code |= 1
                except ProtocolError:
                    pass
                try:
                    with tx:
                        pass
                    code |= 2
                except ProtocolError:
                    pass
                tx.rollback()  # a no-op here: the session is the parent's
                os._exit(code)
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)
            tx.execute("INSERT INTO t(tag) VALUES ('parent-2')")
        self.assertEqual(tags(s), ["parent-1", "parent-2"])

    def test_a_transaction_left_open_stops_refusing_once_its_lease_is_over(self):
        """One abandoned open (kept alive, as a caught exception's traceback
        keeps it) refused the thread's writes for as long as it lived."""
        s = self.client()
        s.write(SCHEMA)
        kept = [s.transaction(idle=0.2).begin()]
        kept[0].execute("INSERT INTO t(tag) VALUES ('abandoned')")
        with self.assertRaises(Refused):
            s.write("INSERT INTO t(tag) VALUES ('at once')")
        deadline = time.monotonic() + 60.0
        while True:
            try:
                s.write("INSERT INTO t(tag) VALUES ('later')")
                break
            except Refused:
                self.assertLess(time.monotonic(), deadline, "the thread stayed refused")
                time.sleep(0.05)
        self.assertEqual(tags(s), ["later"])

    def test_threads_that_end_leave_no_connection_behind(self):
        """300 short-lived threads on one client, one write and one read
        each: each thread's connections close when it ends (they stayed
        open, and the 257th thread waited 10 s for the arbiter's
        per-process cap)."""
        s = self.client()
        s.write(SCHEMA)
        errors = []

        def once(i):
            try:
                s.write("INSERT INTO t(tag) VALUES (?)", ["th-%d" % i])
                s.query("SELECT count(*) AS n FROM t")
            except Exception as e:  # noqa: BLE001  (reported below)
                errors.append(e)

        for i in range(300):
            t = threading.Thread(target=once, args=(i,))
            t.start()
            t.join()
        gc.collect()
        self.assertEqual(errors, [])
        self.assertLessEqual(len(s._open), 2, "connections of ended threads")
        self.assertEqual(len(tags(s)), 300)

    def test_generator_and_coroutine_functions_are_refused(self):
        s = self.client()
        s.write(SCHEMA)

        def gen(tx):
            tx.execute("INSERT INTO t(tag) VALUES ('gen')")
            yield 1

        async def coro(tx):
            tx.execute("INSERT INTO t(tag) VALUES ('coro')")

        for fn in (gen, coro, lambda tx: gen(tx)):
            with self.assertRaises(TypeError):
                s.run_transaction(fn)
        self.assertEqual(tags(s), [])
        with s.transaction() as tx:
            tx.execute("INSERT INTO t(tag) VALUES ('x')")
        with self.assertRaises(ProtocolError):
            tx.commit()

    def test_a_statement_over_the_frame_ends_the_session_and_says_so(self):
        """The arbiter closes the connection of a request over its frame
        limit, which ends the session: the refusal says so, and the next
        call is ``Expired`` (it said only "nothing was written")."""
        s = self.client()
        s.write(SCHEMA)
        with s.transaction() as tx:
            tx.execute("INSERT INTO t(tag) VALUES ('before')")
            with self.assertRaises(Refused) as cm:
                tx.execute("INSERT INTO t(tag) VALUES (?)", [b"x" * (15 * 1024 * 1024)])
            self.assertIn("ended the write session", str(cm.exception))
            with self.assertRaises(Expired):
                tx.execute("INSERT INTO t(tag) VALUES ('after')")
            tx.rollback()
        self.assertEqual(tags(s), [])

    def test_a_query_takes_the_values_a_write_takes(self):
        import datetime
        import math

        s = self.client()
        s.write(SCHEMA)
        for bad, error in ((datetime.date(2020, 1, 1), TypeError), (math.nan, ValueError)):
            with self.assertRaises(error):
                s.write("INSERT INTO t(tag) VALUES (?)", [bad])
            with self.assertRaises(error):
                s.query("SELECT ?", [bad])


if __name__ == "__main__":
    import unittest

    unittest.main()
