"""Python and Rust clients writing concurrently to one arbiter."""

import os
import subprocess
import sys
import time
import unittest

import support
from support import ArbiterTest

ROWS = int(os.environ.get("SCRIBE_MIXED_ROWS", "400"))


class MixedTest(ArbiterTest):
    def test_four_python_and_four_rust_writers(self):
        s = self.client()
        s.write(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, tag TEXT NOT NULL, i INTEGER NOT NULL, "
            "UNIQUE(tag, i))"
        )
        env = dict(os.environ)
        env.update(
            SCRIBE_DB=self.db,
            SCRIBE_ARBITER_BIN=support.SCRIBED,
            SCRIBE_BIN=support.SCRIBE,
        )
        env.pop("SCRIBE_AUTOSTART", None)
        worker = os.path.join(support.HERE, "py_worker.py")
        commands = {}
        for n in range(4):
            commands["py%d" % n] = [sys.executable, worker, self.db, "py%d" % n, str(ROWS)]
            commands["rs%d" % n] = [support.WORKER, "write", "rs%d" % n, str(ROWS)]
        started = time.monotonic()
        procs = {
            tag: subprocess.Popen(
                cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for tag, cmd in commands.items()
        }
        for tag, p in procs.items():
            self.procs.append(p)
        outputs = {}
        for tag, p in procs.items():
            out, err = p.communicate(timeout=120)
            outputs[tag] = (p.returncode, out.strip(), err.strip()[-2000:])
        took = time.monotonic() - started
        for tag, (rc, out, err) in outputs.items():
            self.assertEqual(rc, 0, "%s failed: %s %s" % (tag, out, err))
            self.assertIn("ok=%d" % ROWS, out, tag)

        s.wait_for(s.status()["seq"])
        per_tag = s.query(
            "SELECT tag, count(*) AS n, count(DISTINCT i) AS d, min(i) AS lo, max(i) AS hi "
            "FROM t GROUP BY tag ORDER BY tag"
        )
        self.assertEqual(
            per_tag,
            [{"tag": tag, "n": ROWS, "d": ROWS, "lo": 0, "hi": ROWS - 1} for tag in sorted(commands)],
        )
        self.assertEqual(s.query("SELECT count(*) AS c FROM t"), [{"c": 8 * ROWS}])
        st = s.status()
        print(
            "\n    %d rows from 8 processes in %.2fs; %d commits, mean group %.2f"
            % (8 * ROWS, took, st["commits"], st["mean_group"]),
            end=" ",
        )


if __name__ == "__main__":
    unittest.main()
