"""A Python claimer process for the transaction test.

    python3 py_claimer.py DB NAME

Claims ready tasks with read-then-write transactions until none is left:
SELECT a ready task, UPDATE it only if still ready, insert a run. Prints
each claimed task id on its own line; exits 1 on any failure.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scribe_client import Scribe  # noqa: E402


def claim(tx, name):
    ready = tx.query("SELECT id FROM tasks WHERE status = 'ready' ORDER BY id LIMIT 1")
    if not ready:
        return None
    task = ready[0]["id"]
    changed = tx.execute("UPDATE tasks SET status = 'claimed' WHERE id = ? AND status = 'ready'", [task])
    if changed["rows_affected"] != 1:
        raise RuntimeError("task %d was taken inside a session" % task)
    tx.execute("INSERT INTO runs(task, worker) VALUES (?, ?)", [task, name])
    return task


def main():
    db, name = sys.argv[1], sys.argv[2]
    s = Scribe(db, scribe_bin=os.environ.get("SCRIBE_BIN"))
    while True:
        task = s.run_transaction(lambda tx: claim(tx, name))
        if task is None:
            break
        print(task, flush=True)
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
