"""A Python writer process for the mixed test.

    python3 py_worker.py DB TAG ROWS

Inserts rows (TAG, i) for i in 0..ROWS into table t through scribe_client,
one write each; after each write, waits for its receipt's seq and reads
its own row back (read-your-writes). Prints ``ok=N``; exits 1 on any
failure.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scribe_client import Scribe  # noqa: E402


def main():
    db, tag, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    s = Scribe(db, scribe_bin=os.environ.get("SCRIBE_BIN"))
    for i in range(rows):
        r = s.write("INSERT INTO t(tag, i) VALUES (?, ?) RETURNING id", [tag, i])
        row_id = r["results"][0]["rows"][0]["id"]
        seen = s.wait_for(r["seq"], timeout=10)
        if seen < r["seq"]:
            print("wait_for(%d) returned %d" % (r["seq"], seen), file=sys.stderr)
            return 1
        got = s.query("SELECT id FROM t WHERE tag = ? AND i = ?", [tag, i])
        if got != [{"id": row_id}]:
            print("%s/%d: wrote id %d (seq %d) but read %r" % (tag, i, row_id, r["seq"], got), file=sys.stderr)
            return 1
    s.close()
    print("ok=%d" % rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
