"""The drop-in against the standard sqlite3 module: the same DB-API
scripts, each on its own file, must observe the same results and raise
the same exception classes."""

import os
import subprocess
import sqlite3 as std
import sys
import time
import unittest
import warnings

import dropin_busy
import dropin_cursors
import dropin_fkeys
import dropin_failures
import dropin_autocommit
import dropin_habits
import dropin_local
import dropin_many
import dropin_scripts
import dropin_usage
import dropin_vtabs
import support
from support import ArbiterTest

import scribe_client.sqlite3 as dropin
from scribe_client.sqlite3 import route


class DropinTest(ArbiterTest):
    """The drop-in's database, ``mine``, beside the test's own."""

    def setUp(self):
        super().setUp()
        support.set_env(self, "SCRIBE_BIN", support.SCRIBE)
        self.mine = os.path.join(self.dir, "drop.db")
        self.dbs.append(self.mine)


class DifferentialTest(DropinTest):

    def compare(self, script):
        theirs = script(std, os.path.join(self.dir, "std.db"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dropin.ScribeWarning)
            ours = script(dropin, self.mine)
        self.assertTrue(theirs, "the script observed nothing")
        for i, (a, b) in enumerate(zip(theirs, ours)):
            self.assertEqual(a, b, "%s, step %d" % (script.__name__, i))
        self.assertEqual(len(theirs), len(ours))

    @unittest.skipIf(sys.version_info < (3, 12), "autocommit= is Python 3.12's")
    def test_autocommit_false(self):
        self.compare(dropin_autocommit.autocommit_false)

    @unittest.skipIf(sys.version_info < (3, 12), "autocommit= is Python 3.12's")
    def test_autocommit_false_snapshot(self):
        self.compare(dropin_autocommit.autocommit_false_snapshot)

    @unittest.skipIf(sys.version_info < (3, 12), "autocommit= is Python 3.12's")
    def test_autocommit_modes(self):
        self.compare(dropin_autocommit.autocommit_modes)

    def test_blanks_and_comments_before_the_first_word_are_scanned_not_matched(self):
        # A backtracking pattern over leading blanks takes exponential
        # time; a scan is linear. (Indented SQL is common.)
        blanks = " \n\t" * 40_000
        self.assertTrue(route.begins(blanks + "insert into t values (1)"))
        self.assertFalse(route.begins(blanks + "select 1"))
        lead = blanks + "/* c */ -- d\n"
        self.assertTrue(route.nothing(lead + ";"))
        self.assertFalse(route.nothing(lead + "x"))

    def test_an_answer_too_big_for_a_frame_is_refused_and_the_transaction_goes_on(self):
        # Read inside the transaction, the SELECT runs on the arbiter: its
        # answer (18 MB of JSON) does not fit a frame.
        c = dropin.connect(self.mine, isolation_level=None)
        self.addCleanup(c.close)
        c.execute("CREATE TABLE t(x)")
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO t VALUES (1)")
        with self.assertRaises(dropin.Error) as e:
            c.execute("SELECT replace(hex(zeroblob(1500000)), '0', char(1))")
        self.assertIn("frame limit", str(e.exception))
        c.execute("INSERT INTO t VALUES (2)")
        c.execute("COMMIT")
        self.assertEqual(c.execute("SELECT count(*) FROM t").fetchone(), (2,))

    def test_a_program_writing_the_file_directly_makes_database_is_locked(self):
        # The arbiter's write waits SQLite's busy timeout behind that
        # program's lock, then the drop-in raises what sqlite3 raises (it
        # raised an SQL error, "commit failed (SQLite code 5)").
        c = dropin.connect(self.mine, isolation_level=None, timeout=600)
        self.addCleanup(c.close)
        c.execute("CREATE TABLE t(x)")
        direct = std.connect(self.mine, isolation_level=None)
        self.addCleanup(direct.close)
        direct.execute("BEGIN IMMEDIATE")
        with self.assertRaises(std.OperationalError) as e:
            c.execute("INSERT INTO t VALUES (1)")
        self.assertEqual(str(e.exception), "database is locked")
        if sys.version_info >= (3, 11):  # sqlite3 names its codes from 3.11
            self.assertEqual(e.exception.sqlite_errorcode, std.SQLITE_BUSY)
        direct.execute("COMMIT")
        c.execute("INSERT INTO t VALUES (2)")
        self.assertEqual(c.execute("SELECT x FROM t").fetchall(), [(2,)])

    def test_a_refused_statement_in_a_transaction_says_what_stands(self):
        # Refused by the arbiter inside the transaction's write session: its
        # message said "nothing was written", which invited running the
        # transaction's first statement again before the commit.
        c = dropin.connect(self.mine, isolation_level=None, timeout=600)
        self.addCleanup(c.close)
        c.execute("CREATE TABLE t(x)")
        c.execute("BEGIN")
        c.execute("INSERT INTO t VALUES (1)")
        with self.assertRaises(dropin.Refused) as e:
            c.execute("INSERT INTO _scribe_meta(key, value) VALUES ('x', 'y')")
        self.assertNotIn("nothing was written", str(e.exception))
        self.assertIn("what ran before it in the transaction stands", str(e.exception))
        self.assertTrue(c.in_transaction)
        c.execute("COMMIT")
        self.assertEqual(c.execute("SELECT count(*) FROM t").fetchone(), (1,))

    def test_a_request_too_big_for_a_frame_is_refused_and_the_transaction_goes_on(self):
        # 17 MiB of blob is about 23 MB of JSON: the arbiter would close
        # the connection on the frame before reading it (the client then
        # saw a broken pipe, and retried it until its timeout).
        c = dropin.connect(self.mine, isolation_level=None, timeout=600)
        self.addCleanup(c.close)
        c.execute("CREATE TABLE t(x)")
        big = b"\x01" * (17 << 20)
        with self.assertRaises(dropin.Refused) as e:
            c.execute("INSERT INTO t VALUES (?)", (big,))
        self.assertIn("nothing was written", str(e.exception))
        c.execute("BEGIN")
        c.execute("INSERT INTO t VALUES (1)")
        with self.assertRaises(dropin.Refused):
            c.execute("INSERT INTO t VALUES (?)", (big,))
        self.assertTrue(c.in_transaction)
        c.execute("INSERT INTO t VALUES (2)")
        c.execute("COMMIT")
        self.assertEqual(c.execute("SELECT x FROM t ORDER BY x").fetchall(), [(1,), (2,)])

    def test_a_function_registered_here_is_not_swapped_for_sqlite_s_own_on_the_arbiter(self):
        # A Unicode-aware lower(), as programs register: a write calling it
        # ran SQLite's own lower() on the arbiter, silently.
        c = dropin.connect(self.mine, isolation_level=None)
        self.addCleanup(c.close)
        c.execute("CREATE TABLE p(name, low)")
        c.create_function("lower", 1, str.lower)
        insert = "INSERT INTO p VALUES (?, lower(?))"
        # Past 512 texts that call functions, what each calls was once
        # forgotten apart from its answer: a text still answered from the
        # classifier's cache then went through.
        for i in range(512):
            c.execute("SELECT abs(%d)" % i).fetchall()
        for i in range(3):
            c.execute("SELECT %d" % i).fetchall()
        with self.assertRaises(dropin.NotSupportedError) as e:
            c.execute(insert, ("Élodie", "Élodie"))
        self.assertIn("lower() is registered on this connection", str(e.exception))
        c.execute("SELECT abs(-1) /* one more */").fetchall()
        with self.assertRaises(dropin.NotSupportedError):
            c.execute(insert, ("Élodie", "Élodie"))
        c.execute("BEGIN")
        with self.assertRaises(dropin.NotSupportedError):
            c.execute("SELECT lower(name) FROM p")
        c.execute("ROLLBACK")
        # Outside a transaction a read runs here, with the program's own.
        self.assertEqual(c.execute("SELECT lower('É')").fetchone(), ("é",))
        self.assertEqual(c.execute("SELECT count(*) FROM p").fetchone(), (0,))

    @unittest.skipIf(sys.version_info < (3, 11), "setlimit() is Python 3.11's")
    def test_a_length_limit_of_the_local_reader_keeps_a_write_in_its_transaction(self):
        # The limit is the local reader's (the README says so); the
        # classifying compile it stopped sent the write to commit alone.
        c = dropin.connect(self.mine)
        self.addCleanup(c.close)
        c.execute("CREATE TABLE t(x)")
        c.commit()
        c.setlimit(dropin.SQLITE_LIMIT_LENGTH, 100)
        c.execute("INSERT INTO t VALUES (?)", ("x" * 200,))
        self.assertTrue(c.in_transaction)
        c.rollback()
        self.assertEqual(c.execute("SELECT count(*) FROM t").fetchone(), (0,))

    def test_maintenance_statements_run_or_say_how(self):
        c = dropin.connect(self.mine, isolation_level=None)
        self.addCleanup(c.close)
        c.execute("CREATE TABLE m(x)")
        c.execute("ANALYZE")  # scribe's own tables are analyzed too
        c.execute("PRAGMA optimize")
        self.assertGreater(c.execute("SELECT count(*) FROM sqlite_stat1").fetchone()[0], 0)
        with self.assertRaises(dropin.DatabaseError) as e:
            c.execute("VACUUM")
        self.assertIn("scribe stop --hold", str(e.exception))

    def test_a_write_after_a_stop_on_purpose_fails_at_once(self):
        c = dropin.connect(self.mine, isolation_level=None, timeout=120)
        self.addCleanup(c.close)
        c.execute("CREATE TABLE h(x)")
        out = support.scribe_cli(self.mine, "stop", "--hold")
        self.assertEqual(out.returncode, 0, out.stderr)
        started = time.monotonic()
        with self.assertRaises(dropin.OperationalError) as e:
            c.execute("INSERT INTO h VALUES (1)")  # timeout=120: a retry would wait it out
        self.assertLess(time.monotonic() - started, 30.0)
        self.assertIn("--hold", str(e.exception))
        self.assertEqual(c.execute("SELECT count(*) FROM h").fetchone(), (0,), "reads still work")
        self.assertEqual(support.scribe_cli(self.mine, "start").returncode, 0)
        c.execute("INSERT INTO h VALUES (1)")
        self.assertEqual(c.execute("SELECT count(*) FROM h").fetchone(), (1,))


    def test_a_database_deleted_between_connections_is_made_again(self):
        # A test's set-up removes the file and connects again: sqlite3
        # makes a new one. The arbiter of the deleted file still accepted:
        # the read-only open failed ("unable to open database file"), and
        # then auto-start was held off for 30 s as after a move.
        for round in range(3):
            c = dropin.connect(self.mine, timeout=30)
            c.execute("CREATE TABLE IF NOT EXISTS r(x)")
            c.execute("INSERT INTO r VALUES (?)", (round,))
            c.commit()
            self.assertEqual(c.execute("SELECT x FROM r").fetchall(), [(round,)], "a new file each round")
            c.close()
            os.remove(self.mine)

    def test_a_statement_failing_on_a_deleted_database_is_retried_on_the_new_one(self):
        # The first write after the deletion was run by the old arbiter,
        # against the deleted file, and its failure came back ("table t
        # already exists") instead of a retry on the new file.
        s = self.client(self.mine, retry_for=30.0)
        s.write("CREATE TABLE t(x)")
        os.remove(self.mine)
        s.write("CREATE TABLE t(x)")
        self.assertEqual(s.query("SELECT count(*) AS n FROM t"), [{"n": 0}])

class RefusedByNameTest(DropinTest):
    def test_what_would_write_the_file_past_the_arbiter_is_refused_by_name(self):
        c = dropin.connect(self.mine)
        c.execute("CREATE TABLE t(x)")
        c.execute("INSERT INTO t VALUES (x'00112233')")
        c.commit()
        other_path = os.path.join(self.dir, "other.db")
        self.dbs.append(other_path)
        other = dropin.connect(other_path)
        with self.assertRaisesRegex(dropin.NotSupportedError, "standard sqlite3"):
            c.backup(other)
        copy = std.connect(os.path.join(self.dir, "copy.db"))
        c.backup(copy)  # into the standard module's connection: works
        self.assertEqual(copy.execute("SELECT count(*) FROM t").fetchone(), (1,))
        if hasattr(std.Connection, "blobopen"):  # Python 3.11
            with self.assertRaisesRegex(dropin.NotSupportedError, "readonly=True"):
                c.blobopen("t", "x", 1)
            with c.blobopen("t", "x", 1, readonly=True) as blob:
                self.assertEqual(blob.read(), bytes.fromhex("00112233"))
        if hasattr(std.Connection, "deserialize"):
            with self.assertRaises(dropin.NotSupportedError):
                c.deserialize(copy.serialize())
        self.assertEqual(c.execute("SELECT count(*) FROM t").fetchone(), (1,))
        for conn in (c, other, copy):
            conn.close()


class ModuleTest(unittest.TestCase):
    def test_dbapi2_is_the_drop_in_as_frameworks_import_it(self):
        # Django: sys.modules["sqlite3"] = the drop-in, then its backend's
        # `from sqlite3 import dbapi2 as Database`.
        saved = sys.modules["sqlite3"]
        sys.modules["sqlite3"] = dropin
        try:
            from sqlite3 import dbapi2 as Database
        finally:
            sys.modules["sqlite3"] = saved
        self.assertIs(Database, dropin)
        self.assertIs(Database.connect, dropin.connect)


class ForeignKeysTest(DropinTest):
    """A connection's PRAGMA foreign_keys travels with its writes: the
    arbiter's setting is only the default, as SQLite's compiled-in one is
    (the differential scripts in dropin_fkeys.py run with the default
    off)."""

    def schema(self, c):
        c.execute("CREATE TABLE p(id INTEGER PRIMARY KEY)")
        c.execute("CREATE TABLE ch(id INTEGER PRIMARY KEY, "
                  "p INTEGER REFERENCES p(id) ON DELETE CASCADE)")
        c.execute("INSERT INTO p VALUES (1)")
        c.execute("INSERT INTO ch VALUES (1, 1)")

    def assert_checked(self, c):
        """``c``'s orphan row is refused by the arbiter (the local
        reader's pragma decides nothing for a write), as one write and
        in a transaction."""
        with self.assertRaises(std.IntegrityError):
            c.execute("INSERT INTO ch VALUES (4, 98)")
        c.execute("BEGIN")
        with self.assertRaises(std.IntegrityError):
            c.execute("INSERT INTO ch VALUES (4, 98)")
        c.execute("ROLLBACK")

    def test_off_where_the_arbiter_checks_them_applies_to_this_connection_only(self):
        # Given twice, the last is the one the arbiter applies.
        with open(self.mine + ".scribe.conf", "w") as f:
            f.write("pragma = foreign_keys=off\npragma = foreign_keys=on\n")
        c = dropin.connect(self.mine, isolation_level=None)
        self.schema(c)
        self.assertEqual(c.execute("PRAGMA foreign_keys").fetchone()[0], 1)
        with self.assertRaises(std.IntegrityError):
            c.execute("INSERT INTO ch VALUES (2, 99)")
        # Django's schema editor: off, then read back to be sure.
        c.execute("PRAGMA foreign_keys=OFF")
        self.assertEqual(c.execute("PRAGMA foreign_keys").fetchone()[0], 0)
        # A table rebuild, in a transaction and as one write.
        c.execute("BEGIN")
        c.execute("CREATE TABLE p_new(id INTEGER PRIMARY KEY, note TEXT)")
        c.execute("INSERT INTO p_new(id) SELECT id FROM p")
        c.execute("DROP TABLE p")
        c.execute("ALTER TABLE p_new RENAME TO p")
        c.execute("COMMIT")
        c.execute("DROP TABLE p")
        self.assertEqual(c.execute("SELECT count(*) FROM ch").fetchone()[0], 1, "no cascade")
        c.execute("CREATE TABLE p(id INTEGER PRIMARY KEY)")
        c.execute("INSERT INTO p VALUES (1)")
        c.execute("INSERT INTO ch VALUES (3, 99)")  # unchecked, as the pragma says
        # Another connection keeps the arbiter's setting.
        other = dropin.connect(self.mine, isolation_level=None)
        self.assertEqual(other.execute("PRAGMA foreign_keys").fetchone()[0], 1)
        self.assert_checked(other)
        other.close()
        c.execute("PRAGMA foreign_keys=ON")
        c.execute("DELETE FROM p WHERE id = 1")
        self.assertEqual(c.execute("SELECT id FROM ch").fetchall(), [(3,)], "cascades again")
        c.close()

    def test_on_where_the_arbiter_does_not_check_them_is_checked_by_the_arbiter(self):
        c = dropin.connect(self.mine, isolation_level=None)
        self.schema(c)
        self.assertEqual(c.execute("PRAGMA foreign_keys").fetchone()[0], 0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing to warn about now
            c.execute("PRAGMA foreign_keys=ON")
        self.assertEqual(c.execute("PRAGMA foreign_keys").fetchone()[0], 1)
        self.assert_checked(c)
        c.execute("DELETE FROM p WHERE id = 1")
        self.assertEqual(c.execute("SELECT count(*) FROM ch").fetchone()[0], 0, "cascaded")
        c.close()


class SharedConnectionTest(DropinTest):
    """A connection threads share: the same rows as sqlite3, and no
    deadlock (each module's run is a process of its own, with a
    timeout)."""

    def test_threads_sharing_one_connection(self):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dropin_shared.py")
        outputs = []
        for name, path in (("std", os.path.join(self.dir, "std.db")), ("dropin", self.mine)):
            try:
                out = subprocess.run(
                    [sys.executable, script, name, path], capture_output=True, text=True,
                    timeout=300, env=dict(os.environ, PYTHONPATH=support.PACKAGE_DIR),
                )
            except subprocess.TimeoutExpired:
                self.fail("%s: threads sharing one connection did not finish in 300 s" % name)
            self.assertEqual(out.returncode, 0, out.stderr)
            outputs.append(out.stdout)
        self.assertIn("(240,", outputs[0])
        self.assertEqual(outputs[0], outputs[1])


def _make(script):
    def test(self):
        self.compare(script)

    test.__name__ = "test_" + script.__name__
    return test


for _script in dropin_scripts.SCRIPTS + dropin_habits.SCRIPTS + dropin_many.SCRIPTS + dropin_failures.SCRIPTS + dropin_busy.SCRIPTS + dropin_usage.SCRIPTS + dropin_fkeys.SCRIPTS + dropin_vtabs.SCRIPTS + dropin_cursors.SCRIPTS + dropin_local.SCRIPTS:
    # A script named as a test the class defines would replace it.
    assert not hasattr(DifferentialTest, "test_" + _script.__name__), _script.__name__
    setattr(DifferentialTest, "test_" + _script.__name__, _make(_script))
