"""`scribe shell` on a terminal (a pty): Ctrl-C interrupts a long query
and the prompt comes back, as in sqlite3."""

import os
import pty
import select
import time

import support
from support import ArbiterTest


# A query without end, on the CPU only.
LONG = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n;"


def cpu_ticks(pid):
    """User plus system CPU time of ``pid``, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class Terminal:
    """``scribe shell`` on a pty, and what it has written so far."""

    def __init__(self, test, db):
        self.test = test
        self.seen = bytearray()
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the shell on the pty
            try:
                os.execv(support.SCRIBE, [support.SCRIBE, "--db", db, "shell"])
            finally:
                os._exit(127)

    def until(self, needle, within=60.0, after=0):
        """Reads the terminal until ``needle`` shows (past offset
        ``after``); fails past ``within``. Returns where it ends."""
        deadline = time.monotonic() + within
        while self.seen.find(needle, after) < 0:
            self.test.assertLess(
                time.monotonic(), deadline, "waited for %r: %r" % (needle, bytes(self.seen[-500:]))
            )
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.seen.extend(os.read(self.fd, 4096))
                except OSError:
                    break
        return self.seen.find(needle, after) + len(needle)

    def close(self):
        if self.pid:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


class ShellOnATerminalTest(ArbiterTest):
    def test_ctrl_c_interrupts_a_query_and_the_prompt_comes_back(self):
        term = Terminal(self, self.db)
        pid, fd, seen, until = term.pid, term.fd, term.seen, term.until

        def spend(base):
            """Waits until the query runs: the shell has spent a tenth of a
            second of CPU more than ``base`` (it computes without end)."""
            deadline = time.monotonic() + 60.0
            while cpu_ticks(pid) < base + 10:
                self.assertLess(time.monotonic(), deadline, "the query never ran")
                time.sleep(0.02)

        try:
            until(b"scribe> ")
            base = cpu_ticks(pid)
            os.write(fd, LONG.encode() + b"\r")
            spend(base)
            os.write(fd, b"\x03")
            at = until(b"interrupted")
            # Typed only at the next prompt: the line editor discards what
            # was typed before it took the terminal.
            until(b"scribe> ", after=at)
            os.write(fd, b"SELECT 'back' AS b;\r")
            at = until(b"| back |")
            # A file read with .read stops at Ctrl-C: the rest of it is not
            # run, and the prompt comes back.
            script = os.path.join(self.dir, "long.sql")
            with open(script, "w") as f:
                f.write(LONG + "\nSELECT 'after' || 'wards' AS a;\n")
            at = until(b"scribe> ", after=at)
            base = cpu_ticks(pid)
            os.write(fd, b".read " + script.encode() + b"\r")
            spend(base)
            os.write(fd, b"\x03")
            at = until(b"was not read", after=at)
            until(b"scribe> ", after=at)
            self.assertNotIn(b"afterwards", bytes(seen))
            os.write(fd, b".quit\r")
            _, status = os.waitpid(pid, 0)
            term.pid = 0
            # The exit code is that of the last error: the stopped .read's
            # (a usage error).
            self.assertEqual(os.waitstatus_to_exitcode(status), 1)
        finally:
            term.close()

    def test_a_lapsed_transaction_keeps_its_prompt_until_rollback(self):
        """After the arbiter ends a transaction whose lease lapsed, the shell
        refuses its statements until ROLLBACK: the prompt says a
        transaction is open meanwhile (helper 96: it showed ``scribe>``
        while still refusing)."""
        import json

        term = Terminal(self, self.db)
        fd, seen, until = term.fd, term.seen, term.until

        def session_open():
            out = support.scribe_cli(self.db, "--json", "status")
            return json.loads(out.stdout).get("session") is not None

        try:
            at = until(b"scribe> ")
            os.write(fd, b"CREATE TABLE t(x);\r")
            at = until(b"scribe> ", after=at)
            os.write(fd, b"BEGIN;\r")
            at = until(b"scribe*> ", after=at)
            os.write(fd, b"INSERT INTO t VALUES (1);\r")
            at = until(b"scribe*> ", after=at)
            # The lease lapses (1 s idle): the arbiter rolls it back.
            deadline = time.monotonic() + 60.0
            while session_open():
                self.assertLess(time.monotonic(), deadline, "the session never lapsed")
                time.sleep(0.1)
            os.write(fd, b"INSERT INTO t VALUES (2);\r")
            at = until(b"expired", after=at)
            at = until(b"> ", after=at)
            self.assertEqual(bytes(seen[at - 9:at]), b"scribe*> ", bytes(seen[at - 200:at]))
            os.write(fd, b"SELECT 1;\r")
            at = until(b"ROLLBACK", after=at)
            at = until(b"> ", after=at)
            self.assertEqual(bytes(seen[at - 9:at]), b"scribe*> ")
            os.write(fd, b"ROLLBACK;\r")
            at = until(b"> ", after=at)
            self.assertEqual(bytes(seen[at - 8:at]), b"scribe> ")
            os.write(fd, b".quit\r")
            os.waitpid(term.pid, 0)
            term.pid = 0
        finally:
            term.close()


if __name__ == "__main__":
    import unittest

    unittest.main()
