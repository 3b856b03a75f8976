"""Programs written for the standard sqlite3 module, many processes at
once, through the drop-in: no double claim, no 'database is locked'."""

import os
import subprocess
import sys

import support
from support import ArbiterTest

WORKER = os.path.join(support.HERE, "dropin_worker.py")


class ProcessesTest(ArbiterTest):
    def spawn(self, *args):
        env = dict(os.environ, SCRIBE_BIN=support.SCRIBE)
        env.pop("SCRIBE_AUTOSTART", None)
        p = subprocess.Popen(
            [sys.executable, WORKER, self.db, *args],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.procs.append(p)
        return p

    def finish(self, p):
        out, err = p.communicate(timeout=300)
        self.assertEqual(p.returncode, 0, err)
        self.assertNotIn("locked", err)
        return out

    def test_eight_claimers_two_styles_and_an_autocommit_writer(self):
        s = self.client()
        s.write("CREATE TABLE tasks(id INTEGER PRIMARY KEY, status TEXT NOT NULL)")
        s.write("CREATE TABLE claims(task INTEGER NOT NULL, worker TEXT NOT NULL)")
        s.write("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        s.write(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) "
            "INSERT INTO tasks(id, status) SELECT i, 'ready' FROM n"
        )
        claimers = [self.spawn("claim-immediate" if n % 2 else "claim-cas", "w%d" % n) for n in range(8)]
        writer = self.spawn("insert", "ins", "100")
        claimed = []
        for p in claimers:
            claimed += [int(x) for x in self.finish(p).split()]
        self.finish(writer)
        self.assertEqual(sorted(claimed), list(range(1, 201)), "every task claimed exactly once")
        self.assertEqual(s.query("SELECT count(*) AS n FROM claims"), [{"n": 200}])
        self.assertEqual(
            s.query("SELECT count(*) AS n FROM (SELECT task FROM claims GROUP BY task HAVING count(*) > 1)"),
            [{"n": 0}],
        )
        self.assertEqual(s.query("SELECT count(*) AS n FROM notes"), [{"n": 100}])

    def test_sixteen_processes_start_at_once_on_a_fresh_file(self):
        procs = [self.spawn("startup", "p%d" % n) for n in range(16)]
        for p in procs:
            self.assertEqual(self.finish(p).strip(), "1")
        s = self.client()
        self.assertEqual(s.query("SELECT count(*) AS n FROM notes"), [{"n": 16}])
