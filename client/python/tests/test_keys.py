"""Idempotency keys: unique across a fork, ordered by time."""

import os
import unittest
from unittest import mock

from scribe_client import keys
from scribe_client.keys import new_key


class KeysTest(unittest.TestCase):
    def test_keys_grow_with_time_and_never_repeat(self):
        keys = [new_key() for _ in range(1000)]
        self.assertEqual(len(set(keys)), len(keys))
        stamps = [k.split(".", 1)[0] for k in keys]
        self.assertEqual(stamps, sorted(stamps))
        self.assertTrue(all(len(s) == 16 for s in stamps))

    @unittest.skipUnless(hasattr(os, "fork"), "needs fork")
    def test_a_forked_child_makes_other_keys_than_its_parent(self):
        # Same clock reading on both sides, same tag and counter after the
        # fork: only the process id keeps their keys apart.
        frozen = mock.patch.object(keys.time, "time_ns", return_value=1_700_000_000_000_000_000)
        frozen.start()
        self.addCleanup(frozen.stop)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: same tag, same counter, another pid
            try:
                os.close(r)
                os.write(w, "\n".join(new_key() for _ in range(100)).encode())
            finally:
                os._exit(0)  # never run the rest of the suite in the child
        os.close(w)
        mine = {new_key() for _ in range(100)}
        with os.fdopen(r, "rb") as f:
            theirs = set(f.read().decode().split("\n"))
        os.waitpid(pid, 0)
        self.assertEqual(len(theirs), 100)
        self.assertFalse(mine & theirs)


if __name__ == "__main__":
    unittest.main()
