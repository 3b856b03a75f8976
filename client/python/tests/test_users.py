"""A user the arbiter does not admit is told so at once, by both Python
transports, instead of retrying a closed connection. Run as root only
(the client runs as ``nobody`` under ``setpriv``)."""

import os
import shutil
import subprocess
import sys
import unittest

import support
from support import ArbiterTest
from scribe_client.paths import Paths

SETPRIV = shutil.which("setpriv")

# Both transports, as nobody: the drop-in (framed JSON on the socket) and
# Scribe.write (HTTP). Each prints its exception's class and message.
PROBE = r"""
import sys, time
sys.path.insert(0, sys.argv[2])
import scribe_client.sqlite3 as sqlite3
from scribe_client import Scribe
for name, write in (
    ("dropin", lambda: sqlite3.connect(sys.argv[1]).execute("CREATE TABLE t(x)")),
    ("http", lambda: Scribe(sys.argv[1], autostart=False).write("CREATE TABLE t(x)")),
):
    started = time.monotonic()
    try:
        write()
        print(name, "wrote")
    except Exception as e:
        print(name, type(e).__name__, round(time.monotonic() - started, 1), e)
"""


@unittest.skipUnless(os.geteuid() == 0 and SETPRIV, "needs root and setpriv")
class NotAdmittedTest(ArbiterTest):
    def test_a_uid_that_is_not_allowed_is_refused_at_once_by_name(self):
        os.chmod(self.dir, 0o755)
        self.foreground()
        paths = Paths(self.db)
        # The socket lets nobody in: the arbiter's uid check is what stops it.
        for sock in (paths.socket, paths.http_socket):
            os.chmod(sock, 0o666)
        out = subprocess.run(
            [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
             "-c", PROBE, self.db, support.PACKAGE_DIR],
            capture_output=True, text=True, timeout=120,
            env=dict(os.environ, SCRIBE_AUTOSTART="0"),
        )
        lines = out.stdout.splitlines()
        self.assertEqual(len(lines), 2, out.stdout + out.stderr)
        for line, name in zip(lines, ("dropin", "http")):
            who, kind, seconds, message = line.split(" ", 3)
            self.assertEqual((who, kind), (name, "Refused"), line)
            self.assertLess(float(seconds), 5.0, "told at once, not after retries: " + line)
            self.assertIn("allow-uid = 65534", message)


if __name__ == "__main__":
    unittest.main()
