"""Shared helpers: binaries, temp dirs, and arbiters that always get stopped."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE_DIR = os.path.dirname(HERE)
if PACKAGE_DIR not in sys.path:
    sys.path.insert(0, PACKAGE_DIR)

from scribe_client import Scribe  # noqa: E402
from scribe_client.paths import LOCK_OFFSET, Paths, lock_pid  # noqa: E402,F401
from scribe_client.paths import lock_held as _lock_held  # noqa: E402

BIN_DIR = os.path.abspath(
    os.environ.get("SCRIBE_BIN_DIR")
    or os.path.join(PACKAGE_DIR, "..", "..", "target", "debug")
)
SCRIBE = os.path.join(BIN_DIR, "scribe")
SCRIBED = os.path.join(BIN_DIR, "scribed")
WORKER = os.path.join(BIN_DIR, "test-worker")


def lock_held(db):
    """True while an arbiter holds its lock on the database file (the
    client's own probe, which takes no lock itself)."""
    return bool(_lock_held(os.fsencode(db)))


def scribe_cli(db, *args, timeout=20):
    return subprocess.run(
        [SCRIBE, "--db", db, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=timeout,
        text=True,
    )


def stop_arbiter(db):
    """``scribe stop --grace 0s``; kill -9 (pid from the lock file) if that
    did not end it."""
    if not lock_held(db):
        return
    try:
        scribe_cli(db, "stop", "--grace", "0s", timeout=15)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 5
    while lock_held(db) and time.monotonic() < deadline:
        time.sleep(0.01)
    if lock_held(db):
        pid = lock_pid(db + ".scribe.lock")
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while lock_held(db) and time.monotonic() < deadline:
            time.sleep(0.01)


def wait_accepts(path, timeout=60.0, proc=None):
    import socket

    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return
        except OSError:
            pass
        finally:
            s.close()
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("scribed exited with %s before it was ready" % proc.returncode)
        if time.monotonic() > deadline:
            raise RuntimeError("nothing accepts on %s" % path)
        time.sleep(0.005)


def set_env(test, name, value):
    """Sets an environment variable for the rest of ``test`` only."""
    old = os.environ.get(name)
    test.addCleanup(lambda: os.environ.__setitem__(name, old) if old is not None else os.environ.pop(name, None))
    os.environ[name] = value


def lease_for_a_minute(db):
    """The arbiter that starts for ``db`` leases a write transaction for a
    minute between statements (two in all): a transaction held open to
    keep the writer busy ends only by the limits a test means, however
    slow the machine."""
    with open(db + ".scribe.conf", "w") as f:
        f.write("session-idle = 60s\nsession-total = 120s\n")


def migrations_at_open(db, steps, files):
    """Writes ``files`` (name: SQL) into the directory ``steps`` (made if
    missing) and names it in ``db``'s conf as its migrations at open;
    returns ``steps``."""
    os.makedirs(steps, exist_ok=True)
    for name, sql in files.items():
        with open(os.path.join(steps, name), "w") as f:
            f.write(sql)
    with open(db + ".scribe.conf", "w") as f:
        f.write("migrations = %s\n" % steps)
    return steps


class ArbiterTest(unittest.TestCase):
    """Each test: its own short temp dir under /tmp, its arbiter stopped at the end."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="scpy", dir="/tmp")
        self.db = os.path.join(self.dir, "t.db")
        self.dbs = [self.db]
        self.procs = []

    def tearDown(self):
        for db in self.dbs:
            stop_arbiter(db)
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            for f in (p.stdout, p.stderr):
                if f is not None:
                    f.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self, db=None, **kw):
        kw.setdefault("scribe_bin", SCRIBE)
        kw.setdefault("ready_timeout", 10.0)
        s = Scribe(db or self.db, **kw)
        self.addCleanup(s.close)
        return s

    def foreground(self, *flags, db=None):
        """``scribed --db DB FLAGS`` in the foreground; returns the process
        once both its sockets accept."""
        db = db or self.db
        log = open(os.path.join(self.dir, "fg.log"), "ab")
        p = subprocess.Popen(
            [SCRIBED, "--db", db, *flags], stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        log.close()
        self.procs.append(p)
        # The RPC socket is bound last: once it accepts, both do (the test
        # that changed the sockets' modes found the HTTP one alone).
        wait_accepts(Paths(db).socket, proc=p)
        return p
