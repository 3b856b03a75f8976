"""A database whose path is too long for a socket beside it is served on a
name under ``$XDG_RUNTIME_DIR`` that anyone can compute: a process of a
user who may not write the database, listening there first, gets nothing,
and answers nothing a client believes."""

import os
import shutil
import subprocess
import time
import unittest

import support
from support import ArbiterTest

import scribe_client.sqlite3 as dropin
from scribe_client.errors import Refused, Unavailable
from scribe_client.framed import FramedConnection
from scribe_client.paths import Paths
from scribe_client.reach import check_served

_SQUATTER = """
import socket, sys
for name in sys.argv[1:3]:
    s = socket.socket(socket.AF_UNIX)
    s.bind(name)
    s.listen(8)
    import threading
    def serve(s=s):
        while True:
            c, _ = s.accept()
            c.settimeout(2)
            try:
                d = c.recv(4096)
            except OSError:
                d = b""
            open(sys.argv[3], "ab").write(d)
    threading.Thread(target=serve, daemon=True).start()
open(sys.argv[3] + ".ready", "w").close()
threading.Event().wait()
"""


@unittest.skipUnless(
    os.geteuid() == 0 and shutil.which("setpriv") and os.path.exists("/usr/bin/python3"),
    "needs root, setpriv and /usr/bin/python3 (a listener of another user)",
)
class SquatterTest(ArbiterTest):
    def test_a_listener_of_another_user_on_the_fallback_names_hears_nothing(self):
        support.set_env(self, "XDG_RUNTIME_DIR", self.dir)
        support.set_env(self, "SCRIBE_BIN", support.SCRIBE)
        os.chmod(self.dir, 0o777)
        deep = os.path.join(self.dir, "d" * 60, "e" * 50)
        os.makedirs(deep)
        db = os.path.join(deep, "t.db")
        self.dbs.append(db)
        paths = Paths(db)
        self.assertTrue(paths.http_socket.startswith(self.dir + "/scribe-"))
        heard = os.path.join(self.dir, "heard")
        squatter = subprocess.Popen(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", _SQUATTER,
             paths.socket, paths.http_socket, heard]
        )
        self.procs.append(squatter)
        deadline = time.monotonic() + 60
        while not os.path.exists(heard + ".ready"):
            self.assertLess(time.monotonic(), deadline, "the squatter never listened")
            time.sleep(0.01)
        s = self.client(db)
        s.write("CREATE TABLE secret(x)")
        s.write("INSERT INTO secret VALUES (?)", ["hunter2"])
        c = dropin.connect(db)
        self.addCleanup(c.close)
        c.execute("INSERT INTO secret VALUES ('swordfish')")
        c.commit()
        self.assertEqual(c.execute("SELECT count(*) FROM secret").fetchone(), (2,))
        squatter.kill()
        squatter.wait()
        got = b""
        if os.path.exists(heard):
            with open(heard, "rb") as f:
                got = f.read()
        self.assertEqual(got, b"", "the squatter heard the SQL")


class ServedTest(ArbiterTest):
    def test_the_hello_of_another_files_arbiter_is_refused(self):
        # A real arbiter's hello, checked against the database a client
        # means: the same file under another name passes; another database
        # is refused; the file a restore replaced is unavailable (its
        # arbiter stops once it notices).
        other = os.path.join(self.dir, "other.db")
        self.dbs.append(other)
        self.client(other).write("CREATE TABLE t(x)")
        self.client().write("CREATE TABLE t(x)")
        theirs = FramedConnection(Paths(other), 10.0)
        self.addCleanup(theirs.close)
        link = os.path.join(self.dir, "link.db")
        os.symlink(other, link)
        check_served(theirs.hello, Paths(other))
        check_served(theirs.hello, Paths(link))
        with self.assertRaises(Refused) as e:
            check_served(theirs.hello, Paths(self.db))
        self.assertIn(other, str(e.exception))
        self.assertIn(self.db, str(e.exception))
        copy = os.path.join(self.dir, "copy.db")
        shutil.copyfile(other, copy)
        os.rename(copy, other)
        with self.assertRaises(Unavailable) as e:
            check_served(theirs.hello, Paths(other))
        self.assertIn("moved or replaced", str(e.exception))

    def test_a_link_beside_an_old_lock_record_is_not_taken_for_the_served_name(self):
        # Renamed away, the database left its lock record beside the old
        # name; a link made there later read stale rows through it.
        self.client().write("CREATE TABLE t(x)")
        support.stop_arbiter(self.db)
        moved = os.path.join(self.dir, "moved.db")
        self.dbs.append(moved)
        os.rename(self.db, moved)
        self.assertTrue(os.path.exists(self.db + ".scribe.lock"))
        self.client(moved).write("INSERT INTO t VALUES (1)")
        os.link(moved, self.db)
        with self.assertRaises(dropin.OperationalError) as e:
            dropin.connect(self.db, scribe_bin=support.SCRIBE)
        self.assertIn("(a hard link)", str(e.exception))
        self.assertFalse(os.path.exists(self.db + "-wal"))

    def test_a_socket_that_serves_another_database_is_refused_at_once(self):
        # SCRIBE_SOCKET naming where another database's arbiter listens:
        # refused, not retried (a Scribe retried for its 30 s, starting 47
        # arbiters that each failed to bind, and raised Unavailable).
        shared = os.path.join(self.dir, "shared.sock")
        support.scribe_cli(self.db, "--socket", shared, "exec", "CREATE TABLE t(x)")
        support.set_env(self, "SCRIBE_SOCKET", shared)
        other = os.path.join(self.dir, "other.db")
        self.dbs.append(other)
        with self.assertRaises(Refused) as e:
            self.client(other).write("CREATE TABLE t(x)")
        self.assertIn("serves %s, not %s" % (self.db, other), str(e.exception))
        with self.assertRaises(dropin.DatabaseError) as e:
            dropin.connect(other, scribe_bin=support.SCRIBE).execute("CREATE TABLE t(x)")
        self.assertEqual(e.exception.category, "refused")
        # A start or two per call (each doomed arbiter holds the lock for a
        # moment, and a start that meets it waits for it and tries again),
        # not one after another for as long as the client retries.
        with open(other + ".scribe.log", "rb") as f:
            self.assertLess(f.read().count(b"cannot bind socket"), 20)

    def test_a_hard_link_to_a_served_database_is_refused(self):
        # Reads through it would miss the commits in the other name's WAL
        # (a table made through that name read as missing).
        self.client().write("CREATE TABLE t(x)")
        hard = os.path.join(self.dir, "hard.db")
        os.link(self.db, hard)
        with self.assertRaises(dropin.OperationalError) as e:
            dropin.connect(hard)
        self.assertIn("(a hard link)", str(e.exception))
        c = dropin.connect(self.db)
        self.addCleanup(c.close)
        self.assertEqual(c.execute("SELECT count(*) FROM t").fetchone(), (0,))

    def test_a_database_with_two_names_is_served_under_neither_once_its_arbiter_is_gone(self):
        # Killed with a hard link made meanwhile, the arbiter left its last
        # commits in the WAL beside its own name; one started through the
        # link read the file without them and its commits were written
        # over. No name is served or read now, and nothing is lost.
        s = self.client()
        s.write("CREATE TABLE t(x)")
        s.write("INSERT INTO t VALUES (1)")
        hard = os.path.join(self.dir, "hard.db")
        os.link(self.db, hard)
        os.kill(support.lock_pid(self.db + ".scribe.lock"), 9)
        deadline = time.monotonic() + 10
        while support.lock_held(self.db):
            self.assertLess(time.monotonic(), deadline, "the killed arbiter still holds the lock")
            time.sleep(0.01)
        for name in (hard, self.db):
            with self.assertRaises(dropin.OperationalError) as e:
                dropin.connect(name, scribe_bin=support.SCRIBE)
            self.assertIn("has 2 names (hard links)", str(e.exception))
            with self.assertRaises(Refused) as e:
                self.client(name).query("SELECT count(*) FROM t")
            self.assertIn("has 2 names (hard links)", str(e.exception))
            with self.assertRaises(Unavailable) as e:
                self.client(name).write("INSERT INTO t VALUES (2)")
            self.assertIn("has 2 names (hard links)", str(e.exception))
        self.assertFalse(os.path.exists(hard + "-wal"))
        os.unlink(hard)
        c = dropin.connect(self.db, scribe_bin=support.SCRIBE)
        self.addCleanup(c.close)
        self.assertEqual(c.execute("SELECT x FROM t").fetchall(), [(1,)])
