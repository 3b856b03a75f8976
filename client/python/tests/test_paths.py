"""The path resolver and the stopping marker, without an arbiter."""

import os
import tempfile
import time
import unittest

import support  # noqa: F401  (puts the package on sys.path)
from scribe_client.errors import (
    Conflict,
    Overloaded,
    ProtocolError,
    Refused,
    SqlError,
    Unavailable,
    from_response,
)
from scribe_client.paths import MAX_SOCKET_PATH, Paths, absolute, fnv1a64, read_marker


class FnvTest(unittest.TestCase):
    def test_known_vectors(self):
        self.assertEqual(fnv1a64(b""), 0xCBF29CE484222325)
        self.assertEqual(fnv1a64(b"a"), 0xAF63DC4C8601EC8C)
        self.assertEqual(fnv1a64(b"foobar"), 0x85944171F73967E8)


class AbsoluteTest(unittest.TestCase):
    """As Rust's std::path::absolute on Unix: `.` dropped, `..` kept."""

    def test_forms(self):
        cwd = os.getcwdb()
        self.assertEqual(absolute("rel.db"), cwd + b"/rel.db")
        self.assertEqual(absolute("./x/./rel.db"), cwd + b"/x/rel.db")
        self.assertEqual(absolute("/a/./b/../c.db"), b"/a/b/../c.db")
        self.assertEqual(absolute("/a//b.db"), b"/a/b.db")
        self.assertEqual(absolute("//a/b.db"), b"//a/b.db")
        self.assertEqual(absolute("///a/b.db"), b"/a/b.db")
        self.assertEqual(absolute(b"/x/\xff.db"), b"/x/\xff.db")


class PathsTest(unittest.TestCase):
    def test_a_symlink_to_the_file_names_the_file_it_points_at(self):
        with tempfile.TemporaryDirectory() as d:
            real = os.path.join(d, "real.db")
            open(real, "w").close()
            os.symlink(real, os.path.join(d, "link.db"))
            self.assertEqual(Paths(os.path.join(d, "link.db")).socket, Paths(real).socket)
            # A link to a file not made yet names its target too (SQLite
            # creates the target).
            os.symlink("later.db", os.path.join(d, "dangling.db"))
            self.assertEqual(Paths(os.path.join(d, "dangling.db")).socket, Paths(os.path.join(d, "later.db")).socket)

    def test_beside_the_database_when_short(self):
        p = Paths("/data/app.db")
        self.assertEqual(p.http_socket, "/data/app.db.scribe.http.sock")
        self.assertEqual(p.socket, "/data/app.db.scribe.sock")
        self.assertEqual(p.lock, "/data/app.db.scribe.lock")
        self.assertEqual(p.stop_marker, "/data/app.db.scribe.stopping")
        self.assertEqual(p.config, "/data/app.db.scribe.conf")

    def test_long_paths_fall_back(self):
        long = "/" + "d" * 120 + "/app.db"
        old = os.environ.pop("XDG_RUNTIME_DIR", None)
        try:
            p = Paths(long)
            want = "/tmp/scribe-%016x.http.sock" % fnv1a64(long.encode())
            self.assertEqual(p.http_socket, want)
            os.environ["XDG_RUNTIME_DIR"] = "/run/user/1000"
            self.assertEqual(
                Paths(long).http_socket,
                "/run/user/1000/scribe-%016x.http.sock" % fnv1a64(long.encode()),
            )
            os.environ["XDG_RUNTIME_DIR"] = "/" + "r" * 100  # too long: /tmp
            self.assertEqual(Paths(long).http_socket, want)
            self.assertLessEqual(len(Paths(long).socket_b), MAX_SOCKET_PATH)
            self.assertNotEqual(Paths(long).http_socket, Paths(long + "2").http_socket)
        finally:
            os.environ.pop("XDG_RUNTIME_DIR", None)
            if old is not None:
                os.environ["XDG_RUNTIME_DIR"] = old

    def test_the_limit_is_107_bytes(self):
        # "<db>.scribe.http.sock" of exactly 107 bytes stays beside the db.
        suffix = ".scribe.http.sock"
        db = "/" + "e" * (107 - len(suffix) - 1)
        self.assertEqual(Paths(db).http_socket, db + suffix)
        self.assertNotEqual(Paths(db + "x").http_socket, db + "x" + suffix)
        self.assertIn("/scribe-", Paths(db + "x").http_socket)


class DirectoryTest(unittest.TestCase):
    def test_a_directory_is_not_opened_as_a_database(self):
        """As sqlite3 says it, and nothing is started for it (helper 96:
        the drop-in said a directory had two names, as hard links)."""
        import sqlite3 as std

        import scribe_client.sqlite3 as dropin

        with tempfile.TemporaryDirectory() as d:
            for mod in (std, dropin):
                with self.assertRaises(mod.OperationalError) as cm:
                    mod.connect(d).execute("SELECT 1")
                self.assertIn("unable to open database file", str(cm.exception))
            self.assertEqual(sorted(os.listdir(os.path.dirname(d + "/"))), [])


class MarkerTest(unittest.TestCase):
    def test_hold_until_and_expiry(self):
        with tempfile.TemporaryDirectory(dir="/tmp") as d:
            m = os.path.join(d, "m")
            self.assertIsNone(read_marker(m))
            with open(m, "w") as f:
                f.write("hold\n")
            self.assertEqual(read_marker(m), "hold")
            future = int(time.time() * 1000) + 60000
            with open(m, "w") as f:
                f.write("until=%d\n" % future)
            self.assertEqual(read_marker(m), future)
            with open(m, "w") as f:
                f.write("until=1\n")
            self.assertIsNone(read_marker(m), "expired markers are ignored")
            with open(m, "w") as f:
                f.write("garbage\n")
            self.assertIsNone(read_marker(m))

    def test_a_move_marker_holds_nothing_once_the_file_is_back(self):
        # A database moved away leaves a marker naming it; moved back, the
        # Rust side starts at once, and so must this one (it waited the
        # whole grace period).
        with tempfile.TemporaryDirectory(dir="/tmp") as d:
            db = os.path.join(d, "t.db")
            with open(db, "w"):
                pass
            st = os.stat(db)
            m = db + ".scribe.stopping"
            future = int(time.time() * 1000) + 60000
            with open(m, "w") as f:
                f.write("until=%d\nwhy=moved\nfile=%d:%d\n" % (future, st.st_dev, st.st_ino))
            self.assertIsNone(read_marker(m), "the file named is back")
            with open(m, "w") as f:
                f.write("until=%d\nfile=%d:%d\n" % (future, st.st_dev, st.st_ino + 1))
            self.assertEqual(read_marker(m), future, "another file is there")
            with open(m, "w") as f:
                f.write("until=%d\n" % (future + 10 ** 12))
            self.assertLessEqual(read_marker(m), int(time.time() * 1000) + 24 * 3600 * 1000 + 1000)


class ErrorMappingTest(unittest.TestCase):
    def test_by_category_then_status(self):
        e = from_response(422, {"category": "sql", "message": "m", "statement": 1, "sqlite_code": 19})
        self.assertIsInstance(e, SqlError)
        self.assertEqual((e.status, e.statement, e.sqlite_code), (422, 1, 19))
        self.assertIsInstance(from_response(409, {"category": "conflict", "message": "m"}), Conflict)
        self.assertIsInstance(from_response(413, None), Refused)
        self.assertIsInstance(from_response(404, None), ProtocolError)
        self.assertIsInstance(from_response(502, None), Unavailable)
        o = from_response(429, {"category": "overloaded", "message": "m"}, "2")
        self.assertIsInstance(o, Overloaded)
        self.assertEqual(o.retry_after_ms, 2000)
        o = from_response(429, {"category": "overloaded", "message": "m", "retry_after_ms": 70}, "1")
        self.assertEqual(o.retry_after_ms, 70)


if __name__ == "__main__":
    unittest.main()
