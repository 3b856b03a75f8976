"""The client against a real arbiter: writes, reads, errors, lifecycle."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest

import support
from support import LOCK_OFFSET, ArbiterTest, lock_held, scribe_cli
from scribe_client import (
    Conflict,
    ProtocolError,
    Refused,
    Scribe,
    ScribeError,
    SqlError,
    Timeout,
    Unavailable,
)
from scribe_client.errors import from_response
from scribe_client.paths import Paths, lock_pid
from scribe_client.transport import UnixHTTPConnection, roundtrip


class WriteReadTest(ArbiterTest):
    def test_write_batch_query_returning_and_blobs(self):
        s = self.client()
        s.write("CREATE TABLE v(id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, n)")
        every_byte = bytes(range(256))
        r = s.write(
            "INSERT INTO v(i, r, t, b, n) VALUES (?, ?, ?, ?, ?) RETURNING id, i, r, t, b, n",
            [2**62, 1.5, "é ✓", every_byte, None],
        )
        self.assertFalse(r["replayed"])
        res = r["results"][0]
        self.assertEqual(res["rows_affected"], 1)
        self.assertEqual(res["columns"], ["id", "i", "r", "t", "b", "n"])
        want = {"id": 1, "i": 2**62, "r": 1.5, "t": "é ✓", "b": every_byte, "n": None}
        self.assertEqual(res["rows"], [want])
        self.assertEqual(res["last_insert_rowid"], 1)
        s.wait_for(r["seq"])
        self.assertEqual(s.query("SELECT id, i, r, t, b, n FROM v"), [want])

        # Named parameters, with or without their prefix, both ways.
        r2 = s.write("INSERT INTO v(i, b) VALUES (:i, :b) RETURNING b", {"i": -7, ":b": b""})
        self.assertEqual(r2["results"][0]["rows"], [{"b": b""}])
        s.wait_for(r2["seq"])
        self.assertEqual(s.query("SELECT b FROM v WHERE i = :i", {":i": -7}), [{"b": b""}])
        self.assertEqual(s.query("SELECT count(*) AS c FROM v WHERE i = :i", {"i": -7}), [{"c": 1}])

        # A batch of tuples, dicts and strings: one commit, in order.
        b = s.batch(
            [
                ("INSERT INTO v(i) VALUES (?)", [10]),
                {"sql": "UPDATE v SET t = ? WHERE i = ?", "params": ["ten", 10], "expect_rows": 1},
                "INSERT INTO v(i) VALUES (11)",
                ("SELECT count(*) AS c FROM v",),
            ]
        )
        self.assertEqual(b["seq"], r2["seq"] + 1)
        self.assertEqual([x["rows_affected"] for x in b["results"][:3]], [1, 1, 1])
        self.assertEqual(b["results"][3]["rows"], [{"c": 4}])
        s.wait_for(b["seq"])
        self.assertEqual(s.query("SELECT t FROM v WHERE i = 10"), [{"t": "ten"}])

        # A failing statement rolls back its whole batch.
        with self.assertRaises(SqlError) as cm:
            s.batch([("INSERT INTO v(i) VALUES (?)", [12]), "INSERT INTO nope VALUES (1)"])
        self.assertEqual(cm.exception.statement, 1)
        self.assertEqual(s.query("SELECT count(*) AS c FROM v WHERE i = 12"), [{"c": 0}])

        # Reads never write, and bad SQL in a read is an SqlError.
        with self.assertRaises(SqlError):
            s.query("INSERT INTO v(i) VALUES (1)")
        with self.assertRaises(SqlError):
            s.query("SELECT * FROM nope")

        # Infinite reals both ways (RETURNING, a read, a transaction's
        # read); JSON has no infinity, the arbiter answers 9.0e+999.
        inf = float("inf")
        r3 = s.write("INSERT INTO v(i, r) VALUES (20, ?), (21, ?) RETURNING r", [inf, -inf])
        self.assertEqual(r3["results"][0]["rows"], [{"r": inf}, {"r": -inf}])
        s.wait_for(r3["seq"])
        self.assertEqual(s.query("SELECT r FROM v WHERE r = ?", [-inf]), [{"r": -inf}])
        with s.transaction() as tx:
            got = tx.query("SELECT r FROM v WHERE i >= 20 AND r IN (?, ?) ORDER BY i", [inf, -inf])
            self.assertEqual(got, [{"r": inf}, {"r": -inf}])

        # Local checks: values JSON cannot carry.
        with self.assertRaises(OverflowError):
            s.write("SELECT ?", [2**63])
        with self.assertRaises(ValueError):
            s.write("SELECT ?", [float("nan")])
        with self.assertRaises(TypeError):
            s.write("SELECT ?", [object()])

    def test_key_replay_and_conflict(self):
        s = self.client()
        s.write("CREATE TABLE k(x)")
        r1 = s.write("INSERT INTO k VALUES (?) RETURNING x", [1], key="order-1")
        r2 = s.write("INSERT INTO k VALUES (?) RETURNING x", [1], key="order-1")
        self.assertFalse(r1["replayed"])
        self.assertTrue(r2["replayed"])
        self.assertEqual(r2["seq"], r1["seq"])
        self.assertEqual(r2["results"], r1["results"])
        s.wait_for(r1["seq"])
        self.assertEqual(s.query("SELECT count(*) AS c FROM k"), [{"c": 1}])
        with self.assertRaises(Conflict) as cm:
            s.write("INSERT INTO k VALUES (?)", [2], key="order-1")
        self.assertEqual(cm.exception.status, 409)
        self.assertEqual(cm.exception.category, "conflict")
        # Without a key every write gets its own.
        a = s.write("INSERT INTO k VALUES (3)")
        b = s.write("INSERT INTO k VALUES (3)")
        self.assertFalse(b["replayed"])
        self.assertEqual(b["seq"], a["seq"] + 1)

    def test_foreign_keys_per_write_and_per_transaction(self):
        s = self.client()
        s.write("CREATE TABLE fp(id INTEGER PRIMARY KEY)")
        s.write("CREATE TABLE fc(p INTEGER REFERENCES fp(id))")
        s.write("INSERT INTO fc VALUES (99)")  # the arbiter's default: off
        with self.assertRaises(SqlError) as cm:
            s.write("INSERT INTO fc VALUES (98)", foreign_keys=True)
        self.assertIn("FOREIGN KEY", str(cm.exception))
        with self.assertRaises(SqlError):
            with s.transaction(foreign_keys=True) as tx:
                tx.execute("INSERT INTO fc VALUES (97)")
        with s.transaction(foreign_keys=False) as tx:
            tx.execute("INSERT INTO fc VALUES (96)")
        self.assertEqual(s.query("SELECT p FROM fc ORDER BY p"), [{"p": 96}, {"p": 99}])

    def test_wait_for(self):
        s = self.client()
        r = s.write("CREATE TABLE w(x)")
        self.assertGreaterEqual(s.wait_for(r["seq"]), r["seq"])
        got = []
        other = threading.Thread(target=lambda: got.append(s.wait_for(r["seq"] + 1, timeout=10)))
        other.start()
        time.sleep(0.2)
        self.assertTrue(other.is_alive(), "waits for a commit that has not happened")
        r2 = s.write("INSERT INTO w VALUES (1)")
        other.join(10)
        self.assertEqual(got, [r2["seq"]])
        started = time.monotonic()
        with self.assertRaises(Timeout):
            s.wait_for(r2["seq"] + 100, timeout=0.3)
        # Bounds here are loose on purpose, on a machine of any speed, and
        # below the 10 s call and ready timeouts, so that giving up after
        # waiting one of those out still fails.
        self.assertLess(time.monotonic() - started, 8)
        # Without an arbiter it polls the file.
        support.stop_arbiter(self.db)
        self.assertEqual(s.wait_for(r2["seq"], timeout=1), r2["seq"])
        with self.assertRaises(Timeout):
            s.wait_for(r2["seq"] + 1, timeout=0.2)


class ErrorTest(ArbiterTest):
    def test_categories(self):
        s = self.client()
        s.write("CREATE TABLE e(x INTEGER PRIMARY KEY)")
        failed_before = s.status()["failed"]

        started = time.monotonic()
        with self.assertRaises(SqlError) as cm:
            s.write("INSERT INTO missing VALUES (1)")
        e = cm.exception
        self.assertEqual((e.status, e.category, e.statement, e.sqlite_code), (422, "sql", 0, 1))
        self.assertIn("no such table", str(e))
        self.assertLess(time.monotonic() - started, 8, "never retried")
        self.assertEqual(s.status()["failed"], failed_before + 1, "sent exactly once")

        s.write("INSERT INTO e VALUES (1)")
        with self.assertRaises(SqlError) as cm:
            s.write("INSERT INTO e VALUES (1)")
        self.assertEqual(cm.exception.sqlite_code, 1555)  # SQLITE_CONSTRAINT_PRIMARYKEY

        with self.assertRaises(Conflict) as cm:
            s.write("UPDATE e SET x = x", expect_rows=5)
        self.assertEqual((cm.exception.status, cm.exception.statement), (409, 0))

        with self.assertRaises(Refused) as cm:
            s.write("BEGIN")
        self.assertEqual(cm.exception.status, 403)
        with self.assertRaises(Refused):
            s.write("DELETE FROM _scribe_requests")

        with self.assertRaises(Refused) as cm:
            s.write("SELECT 1", key="k" * 129)
        self.assertEqual(cm.exception.status, 413)
        self.assertIsInstance(cm.exception, ScribeError)

    def test_protocol_400_from_a_raw_request(self):
        self.client().write("SELECT 1")
        conn = UnixHTTPConnection(Paths(self.db).http_socket, timeout=5)
        conn.connect()
        for body in (b'{"statements":', b'{"statements":[{"sql":"SELECT 1","bogus":1}]}'):
            status, headers, data, _ = roundtrip(conn, "POST", "/v1/write", body, 5)
            self.assertEqual(status, 400)
            parsed = json.loads(data)
            self.assertEqual(parsed["category"], "protocol")
            err = from_response(status, parsed, headers.get("retry-after"))
            self.assertIsInstance(err, ProtocolError)
            self.assertEqual(err.status, 400)
        conn.close()

    def test_413_over_the_arbiters_limits(self):
        self.foreground("--max-statements", "2")
        s = self.client()
        s.batch(["SELECT 1", "SELECT 2"])
        with self.assertRaises(Refused) as cm:
            s.batch(["SELECT 1", "SELECT 2", "SELECT 3"])
        self.assertEqual(cm.exception.status, 413)
        self.assertIn("max-statements", str(cm.exception))
        # A body over the HTTP limit is answered (413) before it is read
        # whole, and the socket closed under the rest: the answer still
        # comes through, not a lost connection retried until retry_for.
        with self.assertRaises(Refused) as cm:
            s.write("SELECT ?", ["x" * (17 * 1024 * 1024)])
        self.assertEqual(cm.exception.status, 413)
        self.assertIn("request body of", str(cm.exception))

    def test_overloaded_is_retried(self):
        self.foreground("--queue-capacity", "1")
        s = self.client()
        s.write("CREATE TABLE o(th INTEGER, i INTEGER, UNIQUE(th, i))")
        errors = []

        def work(th):
            try:
                for i in range(20):
                    s.write("INSERT INTO o VALUES (?, ?)", [th, i])
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=work, args=(th,)) for th in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        st = s.status()
        s.wait_for(st["seq"])
        self.assertEqual(s.query("SELECT count(*) AS c FROM o"), [{"c": 240}])
        # Overloads are likely with a queue of one, not certain: when they
        # happened, every one of them was retried to success above.
        print("\n    overloaded answers retried: %d" % st["overloaded"], end=" ")


class LifecycleTest(ArbiterTest):
    def test_autostart_on_write_and_on_a_query_of_a_missing_database(self):
        s = self.client()
        self.assertFalse(os.path.exists(self.db))
        self.assertEqual(s.query("SELECT 1 AS x"), [{"x": 1}])
        self.assertTrue(os.path.exists(self.db), "the arbiter created it")
        self.assertTrue(lock_held(self.db))
        pid = lock_pid(self.db + ".scribe.lock")
        self.assertEqual(s.status()["pid"], pid)

        # A second database: the first write starts its arbiter.
        db2 = os.path.join(self.dir, "u.db")
        self.dbs.append(db2)
        s2 = self.client(db2)
        r = s2.write("CREATE TABLE z(x)")
        self.assertEqual(r["seq"], 1)
        self.assertNotEqual(s2.status()["pid"], pid)

    def test_autostart_off(self):
        os.environ["SCRIBE_AUTOSTART"] = "0"
        try:
            s = self.client(retry_for=0.2)
        finally:
            del os.environ["SCRIBE_AUTOSTART"]
        with self.assertRaises(Unavailable) as cm:
            s.query("SELECT 1")
        self.assertIn("auto-start is off", str(cm.exception))
        with self.assertRaises(Unavailable):
            s.write("SELECT 1")
        self.assertFalse(os.path.exists(self.db), "a reader never creates the database")
        with self.assertRaises(Unavailable):
            self.client(autostart=False, retry_for=0).write("SELECT 1")
        started = time.monotonic()
        with self.assertRaises(Unavailable) as cm:
            self.client(scribe_bin=os.path.join(self.dir, "no-such-scribe")).write("SELECT 1")
        self.assertLess(time.monotonic() - started, 8, "a missing binary is not retried")
        self.assertFalse(lock_held(self.db))

    def test_autostart_off_with_the_lock_held_says_an_arbiter_holds_it(self):
        # What an arbiter applying migrations at open looks like: the lock
        # on the database is held, and no socket accepts yet.
        holder = subprocess.Popen(
            [sys.executable, "-c",
             "import fcntl, os, sys\n"
             "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)\n"
             "fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, int(sys.argv[2]))\n"
             "print('held', flush=True)\n"
             "sys.stdin.read()\n",
             self.db, str(LOCK_OFFSET)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        try:
            self.assertEqual(holder.stdout.readline().strip(), "held")
            s = self.client(autostart=False, retry_for=0.2)
            with self.assertRaises(Unavailable) as cm:
                s.write("SELECT 1")
            self.assertIn("an arbiter holds", str(cm.exception))
            self.assertIn("does not accept connections", str(cm.exception))
        finally:
            holder.stdin.close()
            holder.stdout.close()
            holder.wait(timeout=30)
        # Released: absent again, as auto-start off says.
        with self.assertRaises(Unavailable) as cm:
            self.client(autostart=False, retry_for=0.2).write("SELECT 1")
        self.assertIn("auto-start is off", str(cm.exception))

    def test_stopped_with_hold_raises_unavailable_at_once(self):
        s = self.client()
        s.write("CREATE TABLE h(x)")
        out = scribe_cli(self.db, "stop", "--hold")
        self.assertEqual(out.returncode, 0, out.stderr)
        started = time.monotonic()
        with self.assertRaises(Unavailable) as cm:
            s.write("INSERT INTO h VALUES (1)")  # retry_for is 30 s
        self.assertLess(time.monotonic() - started, 8)
        self.assertIn("--hold", str(cm.exception))
        with self.assertRaises(Unavailable):
            s.status()
        self.assertFalse(lock_held(self.db), "auto-start did not override the hold")
        self.assertEqual(s.query("SELECT count(*) AS c FROM h"), [{"c": 0}], "reads still work")

        # `scribe start` lifts the hold; a stop with a grace period also
        # makes writers give up at once.
        self.assertEqual(scribe_cli(self.db, "start").returncode, 0)
        s.write("INSERT INTO h VALUES (1)")
        self.assertEqual(scribe_cli(self.db, "stop", "--grace", "30s").returncode, 0)
        started = time.monotonic()
        with self.assertRaises(Unavailable) as cm:
            s.write("INSERT INTO h VALUES (2)")
        self.assertLess(time.monotonic() - started, 8)
        self.assertIn("auto-start resumes", str(cm.exception))

    def test_kill_9_then_the_next_write_starts_a_new_arbiter(self):
        s = self.client()
        s.write("CREATE TABLE k9(x)")
        pid = lock_pid(self.db + ".scribe.lock")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while lock_held(self.db) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertTrue(os.path.exists(Paths(self.db).http_socket), "a stale socket is left")
        r = s.write("INSERT INTO k9 VALUES (1)")
        self.assertEqual(r["seq"], 2)
        self.assertNotEqual(lock_pid(self.db + ".scribe.lock"), pid)

    def test_a_kept_alive_connection_closed_by_the_arbiter_is_reopened(self):
        self.foreground("--hello-timeout", "500ms")
        s = self.client()
        s.write("CREATE TABLE ka(x)")
        time.sleep(1.0)  # the arbiter closes the idle connection
        r = s.write("INSERT INTO ka VALUES (1)")
        self.assertEqual(r["seq"], 2)

    def test_long_paths_and_dotdot_resolve_as_the_arbiter_resolves_them(self):
        old = os.environ.get("XDG_RUNTIME_DIR")
        os.environ["XDG_RUNTIME_DIR"] = self.dir
        db = None
        try:
            deep = os.path.join(self.dir, "d" * 60, "e" * 40)
            os.makedirs(deep)
            db = os.path.join(deep, "..", "e" * 40, "long.db")
            self.dbs.append(db)
            s = self.client(db)
            self.assertTrue(s.paths.http_socket.startswith(self.dir + "/scribe-"))
            s.write("CREATE TABLE lp(x)")
            st = s.status()
            self.assertEqual(st["db"], s.paths.db)
            # Both sides resolve the directory, so every spelling of the
            # path finds the same (hashed) socket.
            self.assertNotIn("/../", st["db"])
            self.assertEqual(st["db"], os.path.join(os.path.realpath(deep), "long.db"))
            self.assertEqual(st["socket"], s.paths.socket)
            self.assertTrue(os.path.exists(s.paths.http_socket))
        finally:
            if db is not None:
                support.stop_arbiter(db)  # the CLI resolves the same socket
            if old is None:
                del os.environ["XDG_RUNTIME_DIR"]
            else:
                os.environ["XDG_RUNTIME_DIR"] = old


if __name__ == "__main__":
    unittest.main()
