"""A stop that ends a drop-in transaction: its COMMIT, never read by the
arbiter, says the transaction was rolled back (``Expired``), not that the
arbiter is unavailable (retryable: a program that tried COMMIT again was
told it succeeded, with nothing written). And the start of an arbiter
beside another program's write transaction, which waits for its lock as
sqlite3 waits."""

import sqlite3
import threading

import support
from support import ArbiterTest

import scribe_client.sqlite3 as dropin


class StopInTransactionTest(ArbiterTest):
    def test_a_commit_after_a_stop_says_the_transaction_was_rolled_back(self):
        support.set_env(self, "SCRIBE_BIN", support.SCRIBE)
        c = dropin.connect(self.db, timeout=30)
        self.addCleanup(c.close)
        c.execute("CREATE TABLE t(x)")
        c.commit()
        c.execute("INSERT INTO t VALUES (1)")
        self.assertTrue(c.in_transaction)
        # The stop waits for the session up to its lease, then ends it.
        support.scribe_cli(self.db, "stop", timeout=60)
        with self.assertRaises(dropin.OperationalError) as e:
            c.commit()
        self.assertEqual(getattr(e.exception, "category", None), "expired", str(e.exception))
        self.assertIn("rolled back", str(e.exception))
        self.assertFalse(c.in_transaction)
        c.commit()  # nothing left to commit
        self.assertEqual(sqlite3.connect(self.db).execute("SELECT count(*) FROM t").fetchone(), (0,))


class StartBesideAWriterTest(ArbiterTest):
    def write_beside_a_lock_held_for(self, seconds):
        """Another program holds a write transaction on the file, still in
        rollback mode, for ``seconds`` while the first drop-in transaction
        starts the arbiter; returns the rows at the end."""
        support.set_env(self, "SCRIBE_BIN", support.SCRIBE)
        other = sqlite3.connect(self.db, isolation_level=None, check_same_thread=False)
        self.addCleanup(other.close)
        other.execute("CREATE TABLE t(x)")
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t VALUES (0)")
        let_go = threading.Timer(seconds, lambda: other.execute("COMMIT"))
        let_go.start()
        self.addCleanup(let_go.cancel)
        c = dropin.connect(self.db, timeout=120)
        self.addCleanup(c.close)
        c.execute("INSERT INTO t VALUES (1)")
        c.commit()
        let_go.join()
        return sqlite3.connect(self.db).execute("SELECT x FROM t ORDER BY x").fetchall()

    def test_a_transaction_waits_for_another_program_s_lock_on_a_rollback_mode_file(self):
        # It waits, as sqlite3 waits for a lock. It failed at once ("cannot
        # start the arbiter ... database is locked"): the arbiter's switch
        # to WAL did not wait.
        self.assertEqual(self.write_beside_a_lock_held_for(1.0), [(0,), (1,)])

    def test_a_transaction_outwaits_a_lock_held_past_the_arbiter_s_own_wait(self):
        # Held past the arbiter's busy timeout (5 s): its first start fails
        # ("database is locked", not recorded) and the drop-in's begin
        # tries again within its own timeout, as a write does. It raised
        # Unavailable at the first failure.
        self.assertEqual(self.write_beside_a_lock_held_for(7.0), [(0,), (1,)])
