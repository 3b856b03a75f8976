"""`scribe shell` on a terminal (a pty): Ctrl-C interrupts a long query
and the prompt comes back, as in sqlite3."""

import os
import pty
import select
import time

import support
from support import ArbiterTest


class ShellOnATerminalTest(ArbiterTest):
    def test_ctrl_c_interrupts_a_query_and_the_prompt_comes_back(self):
        pid, fd = pty.fork()
        if pid == 0:  # the child: the shell on the pty
            try:
                os.execv(support.SCRIBE, [support.SCRIBE, "--db", self.db, "shell"])
            finally:
                os._exit(127)
        seen = bytearray()

        def until(needle, poke=None, within=60.0, after=0):
            """Reads the terminal until ``needle`` shows (past offset
            ``after``), writing ``poke`` every 200 ms meanwhile; fails past
            ``within``. Returns where it ends."""
            deadline = time.monotonic() + within
            while seen.find(needle, after) < 0:
                self.assertLess(time.monotonic(), deadline, "waited for %r: %r" % (needle, bytes(seen[-500:])))
                if poke is not None:
                    os.write(fd, poke)
                ready, _, _ = select.select([fd], [], [], 0.2)
                if ready:
                    try:
                        seen.extend(os.read(fd, 4096))
                    except OSError:
                        break
            return seen.find(needle, after) + len(needle)

        try:
            until(b"scribe> ")
            os.write(fd, b"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n;\r")
            until(b"FROM n;")
            # A Ctrl-C that lands before the query runs does nothing: send
            # it until the query is interrupted.
            at = until(b"interrupted", poke=b"\x03")
            # Typed only at the next prompt: the line editor discards what
            # was typed before it took the terminal.
            until(b"scribe> ", after=at)
            os.write(fd, b"SELECT 'back' AS b;\r")
            until(b"| back |")
            os.write(fd, b".quit\r")
            _, status = os.waitpid(pid, 0)
            pid = 0
            # The exit code is that of the last error: the interrupted query's.
            self.assertEqual(os.waitstatus_to_exitcode(status), 15)
        finally:
            if pid:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            os.close(fd)


if __name__ == "__main__":
    import unittest

    unittest.main()
