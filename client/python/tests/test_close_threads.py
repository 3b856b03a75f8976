"""``Scribe.close()`` while other threads write and read (helper 100):
it closed their sqlite3 readers under them, and the process died of a
segmentation fault. Their connections are now ended by their own threads
(sockets shut down, readers closed at their next call), and they go on."""

import os
import subprocess
import sys
import textwrap

import support
from support import ArbiterTest

SCRIPT = textwrap.dedent(
    """
    import sys, threading
    from scribe_client import Scribe
    db = Scribe(sys.argv[1], scribe_bin=sys.argv[2], ready_timeout=30.0)
    db.write("CREATE TABLE IF NOT EXISTS t(x)")
    stop = threading.Event()
    errors = []
    def work():
        while not stop.is_set():
            try:
                db.write("INSERT INTO t VALUES (1)")
                db.query("SELECT count(*) AS n FROM t")
            except Exception as e:
                errors.append(repr(e))
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(40):
        stop.wait(0.02)
        db.close()
    stop.set()
    for t in threads:
        t.join()
    print(len(errors), errors[:3])
    """
)


class CloseWhileThreadsWorkTest(ArbiterTest):
    def test_close_while_other_threads_write_and_read(self):
        env = dict(os.environ, PYTHONPATH=support.PACKAGE_DIR)
        for _ in range(3):
            out = subprocess.run(
                [sys.executable, "-c", SCRIPT, self.db, support.SCRIBE],
                capture_output=True, text=True, timeout=300, env=env,
            )
            self.assertEqual(out.returncode, 0, out.stderr[-2000:])
            self.assertTrue(out.stdout.startswith("0 "), out.stdout)


if __name__ == "__main__":
    import unittest

    unittest.main()
