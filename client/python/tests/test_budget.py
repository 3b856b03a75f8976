"""The arbiter's memory budget counts a request's room from its announced
size, before its body comes: a process that announces large bodies and
never sends them holds only its own share, and other processes write on."""

import subprocess
import sys

import support
from support import ArbiterTest

# Opens connections announcing 16 MB bodies, sends a few bytes of each,
# says so, and holds them until its stdin closes.
STALL = r"""
import socket, sys
held = []
for _ in range(12):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.sendall(b'POST /v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: 16000000\r\n\r\n{"sta')
    held.append(s)
print("stalled", flush=True)
sys.stdin.read()
"""


class BudgetTest(ArbiterTest):
    def test_bodies_announced_and_never_sent_stall_only_their_own_process(self):
        # Late bodies are cut only after five minutes: longer than this test.
        self.foreground("--hello-timeout", "300s")
        s = self.client(call_timeout=60.0)
        s.write("CREATE TABLE t(x)")
        stall = subprocess.Popen(
            [sys.executable, "-c", STALL, support.Paths(self.db).http_socket],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.procs.append(stall)
        self.assertEqual(stall.stdout.readline(), b"stalled\n")
        # Twelve such bodies cost more than the whole budget; when one
        # process could hold all of it, this write (whose room waits in
        # line behind theirs) waited until they were cut.
        receipt = s.write("INSERT INTO t VALUES (1)")
        self.assertGreater(receipt["seq"], 0)
        self.assertEqual(s.query("SELECT count(*) AS n FROM t"), [{"n": 1}])
        self.assertIsNone(stall.poll(), "the stalled bodies were still held")
        stall.stdin.close()


if __name__ == "__main__":
    import unittest

    unittest.main()
