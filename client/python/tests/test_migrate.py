"""Schema migrations from Python: each step once, however many ask."""

import os
import signal
import subprocess
import sys
import threading
import time

import support
from scribe_client import Conflict
from support import ArbiterTest

STEPS = [
    (1, "init", "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL);"),
    (2, "add_done", "ALTER TABLE notes ADD COLUMN done INTEGER NOT NULL DEFAULT 0;"),
]

SCRIPT = """
import sys
sys.path.insert(0, %r)
from scribe_client import Scribe
db = Scribe(sys.argv[1], scribe_bin=%r)
db.migrate(%r)
db.write("INSERT INTO notes(body) VALUES (?)", [sys.argv[2]])
"""


class MigrateTest(ArbiterTest):
    def test_a_list_applies_once_and_a_changed_step_is_refused(self):
        s = self.client()
        first = s.migrate(STEPS)
        self.assertEqual((first["before"], first["after"], first["applied"]), (0, 2, [1, 2]))
        again = s.migrate(STEPS)
        self.assertEqual((again["after"], again["applied"], again["newer"]), (2, [], False))
        older = s.migrate(STEPS[:1])
        self.assertTrue(older["newer"])
        with self.assertRaises(Conflict):
            s.migrate([(1, "init", "CREATE TABLE notes(id);"), STEPS[1]])
        self.assertEqual(s.status()["schema_version"], 2)

    def test_a_misspelt_key_or_a_nul_byte_is_refused_and_nothing_runs(self):
        from scribe_client import Refused

        s = self.client()
        with self.assertRaises(TypeError) as e:
            s.migrate([{"version": 1, "name": "init", "sql": "CREATE TABLE a(x);", "foreign_key_off": True}])
        self.assertIn("'foreign_key_off'", str(e.exception))
        # SQLite would stop reading at the NUL, apply the first table and
        # record the step as done.
        with self.assertRaises(Refused) as e:
            s.migrate([(1, "init", "CREATE TABLE a(x);\0 CREATE TABLE b(y);")])
        self.assertIn("NUL byte", str(e.exception))
        self.assertEqual(s.status()["schema_version"], 0)
        self.assertEqual(s.query("SELECT name FROM sqlite_master WHERE name IN ('a', 'b')"), [])

    def test_a_directory_with_crlf_files_matches_what_the_cli_applied(self):
        d = os.path.join(self.dir, "crlf")
        os.mkdir(d)
        with open(os.path.join(d, "0001_init.sql"), "wb") as f:
            f.write(b"CREATE TABLE a(x);\r\nCREATE TABLE b(y);\r\n")
        out = support.scribe_cli(self.db, "migrate", d)
        self.assertEqual(out.returncode, 0, out.stderr)
        # The same files from Python: the same checksum, nothing to apply.
        report = self.client().migrate(d)
        self.assertEqual((report["applied"], report["after"]), ([], 1))

    def test_two_files_with_one_version_are_refused_by_name(self):
        from scribe_client.migrations import from_dir
        d = os.path.join(self.dir, "migrations")
        os.mkdir(d)
        for name in ("0001_init.sql", "0002_a.sql", "0002_b.sql"):
            with open(os.path.join(d, name), "w") as f:
                f.write("SELECT 1;\n")
        with self.assertRaises(ValueError) as e:
            from_dir(d)
        self.assertIn("two migration files have version 2", str(e.exception))

    def test_a_directory_reads_the_foreign_keys_directive_as_the_cli_does(self):
        from scribe_client.migrations import from_dir

        d = os.path.join(self.dir, "fk")
        os.mkdir(d)
        files = {
            # A byte-order mark, a header comment, spacing: still meant.
            "0001_rebuild.SQL": "\ufeff-- rebuild\n-- scribe: foreign_keys = off\nSELECT 1;\n",
            "0002_plain.sql": "-- scribe handles the rest\nSELECT 1;\n",
            "\uff10\uff10\uff10\uff13_wide.sql": "SELECT 1;\n",  # not ASCII digits: not a migration
        }
        for name, text in files.items():
            with open(os.path.join(d, name), "w", encoding="utf-8") as f:
                f.write(text)
        self.assertEqual(
            [(m["version"], m["name"], m["foreign_keys_off"]) for m in from_dir(d)],
            [(1, "rebuild", True), (2, "plain", False)],
        )
        out = support.scribe_cli(self.db, "migrate", d)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.client().migrate(d)["applied"], [])  # the same two, the same checksums
        with open(os.path.join(d, "0003_bad.sql"), "w") as f:
            f.write("-- scribe: foreign_keys=false\nSELECT 1;\n")
        with self.assertRaises(ValueError) as e:
            from_dir(d)
        self.assertIn("0003_bad.sql: line 1", str(e.exception))

    def test_a_frozen_arbiter_is_given_up_on_within_two_call_timeouts(self):
        from scribe_client import Timeout

        proc = self.foreground()
        s = self.client(call_timeout=2.0, retry_for=0)
        slow = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200000000) INSERT INTO a SELECT i FROM c;"
        outcome = []

        def run():
            try:
                outcome.append(s.migrate([(1, "init", "CREATE TABLE a(x);"), (2, "slow", slow)]))
            except Exception as e:  # noqa: BLE001  (the outcome is the test)
                outcome.append(e)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        # Migration 1 is recorded: 2 runs now. Then the arbiter freezes.
        deadline = time.monotonic() + 60
        while not s.query("SELECT name FROM sqlite_master WHERE name = '_scribe_migrations'") or not s.query(
            "SELECT version FROM _scribe_migrations"
        ):
            self.assertLess(time.monotonic(), deadline, "migration 1 never committed")
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            t.join(60)
            self.assertFalse(t.is_alive(), "still waiting on a frozen arbiter")
        finally:
            os.kill(proc.pid, signal.SIGKILL)
        self.assertIsInstance(outcome[0], Timeout)
        self.assertIn("stopped answering", str(outcome[0]))

    def test_the_directive_reads_every_shared_case_as_the_arbiter_does(self):
        import re

        from scribe_client.migrations import directives

        cases = os.path.join(os.path.dirname(__file__), "..", "..", "..", "protocol", "src", "directive_cases.txt")
        escapes = {"n": "\n", "r": "\r", "t": "\t", "v": "\x0b"}

        def unescape(text):
            def one(m):
                return chr(int(m.group(1), 16)) if m.group(1) else escapes.get(m.group(2), m.group(2))

            return re.sub(r"\\(?:u\{([0-9a-fA-F]+)\}|(.))", one, text)

        seen = 0
        with open(cases, encoding="utf-8") as f:
            for line in f.read().split("\n"):
                if not line or line.startswith("#"):
                    continue
                text, expected = line.split("\t")
                seen += 1
                with self.subTest(text=text):
                    if expected in ("on", "off"):
                        self.assertEqual(directives(unescape(text)), expected == "off")
                    else:
                        with self.assertRaises(ValueError) as e:
                            directives(unescape(text))
                        self.assertIn(expected, str(e.exception))
        self.assertGreater(seen, 20)

    def test_the_drop_in_migrates_too(self):
        import scribe_client.sqlite3 as dropin

        support.set_env(self, "SCRIBE_BIN", support.SCRIBE)
        conn = dropin.connect(self.db)
        report = conn.migrate(STEPS)
        self.assertEqual(report["applied"], [1, 2])
        conn.execute("INSERT INTO notes(body) VALUES ('x')")
        conn.commit()
        self.assertEqual(conn.execute("SELECT done FROM notes").fetchall(), [(0,)])
        with self.assertRaises(dropin.IntegrityError):
            conn.migrate([(1, "init", "CREATE TABLE other(x);")])
        conn.close()

    def test_eight_processes_at_startup(self):
        d = os.path.join(self.dir, "migrations")
        os.mkdir(d)
        for version, name, sql in STEPS:
            with open(os.path.join(d, "%04d_%s.sql" % (version, name)), "w") as f:
                f.write(sql)
        code = SCRIPT % (support.PACKAGE_DIR, support.SCRIBE, d)
        procs = [
            subprocess.Popen([sys.executable, "-c", code, self.db, "p%d" % n], stderr=subprocess.PIPE, text=True)
            for n in range(8)
        ]
        for p in procs:
            _, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
        s = self.client()
        self.assertEqual(s.query("SELECT count(*) AS n FROM notes"), [{"n": 8}])
        self.assertEqual(s.query("SELECT count(*) AS n FROM _scribe_migrations"), [{"n": 2}])
