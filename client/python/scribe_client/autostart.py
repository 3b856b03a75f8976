"""Auto-start: when no arbiter answers, run ``scribe --db PATH start`` and
wait until the arbiter's socket accepts; never while a stop is in force."""

import os
import shutil
import socket
import subprocess
import time
from typing import Optional, Union

from .errors import Refused, Unavailable
from .failed_start import describe as describe_failure
from .failed_start import holding_back
from .failed_start import last as last_failure
from .paths import describe_marker, lock_held, read_marker
from .reach import connect_checked
from .starting import busy_error, starting, wait_starting

__all__ = ["AutoStart"]

#: The CLI's exit code for a refusal (the `refused` category).
_REFUSED_EXIT = 16


class AutoStart:
    """The auto-start half of ``Scribe`` (it needs ``paths``,
    ``autostart``, ``ready_timeout``, ``call_timeout``, ``retry_for``,
    ``starting_wait``, ``_scribe_bin`` and ``_start_lock``)."""

    def _accepts(self) -> bool:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(1.0)
            # The RPC socket is bound last: once it accepts, both do.
            connect_checked(s, self.paths, "socket")
            return True
        except (OSError, Unavailable):
            return False
        finally:
            s.close()

    def _await_starting(self) -> bool:
        """Waits for an arbiter that is starting (migrations at open) as a
        write waits for the writer, up to this caller's wait (see
        ``wait_starting``): True once it accepts, False when none is
        starting."""
        return wait_starting(self.paths, self.ready_timeout, self._busy_wait(), self._accepts)

    def _busy_wait(self) -> float:
        """This caller's wait for the writer: the drop-in's ``timeout``,
        else a call's deadline (within ``retry_for``)."""
        if self.starting_wait is not None:
            return max(0.0, float(self.starting_wait))
        return min(self.call_timeout, self.retry_for) if self.retry_for > 0 else self.call_timeout

    def _no_arbiter(self, marker: Optional[Union[str, int]] = None) -> Unavailable:
        """Why no arbiter answers; ``marker``, when given, is the stopping
        marker that decided it (read again, a `scribe start` may have
        removed it meanwhile, and the reason would be another's)."""
        if marker is None:
            marker = read_marker(self.paths.stop_marker)
        if marker is None and lock_held(self.paths.db_b):
            # An arbiter holds the database but takes no connection: it is
            # too busy to accept, not absent.
            return Unavailable(
                "an arbiter holds %s but does not accept connections on %s now (it is too busy "
                "to accept): retry"
                % (self.paths.db, self.paths.http_socket)
            )
        failed = holding_back(self.paths) if marker is None and self.autostart else None
        if failed is not None:
            return Unavailable(describe_failure(self.paths, failed))
        if marker is not None:
            why = describe_marker(marker)
        else:
            if not self.autostart:
                why = "auto-start is off (autostart=False or SCRIBE_AUTOSTART=0)"
            else:
                why = "none was asked to start"
            older = last_failure(self.paths)
            if older is not None:
                why += "; its last start failed %d s ago: %s" % (int(older[1]), older[0])
        return Unavailable("no arbiter is running for %s: %s" % (self.paths.db, why))

    def _held_back(self) -> None:
        """Raises (not to be retried) while a start that just failed holds
        auto-start back (see ``failed_start``)."""
        failed = holding_back(self.paths)
        if failed is not None:
            e = Unavailable(describe_failure(self.paths, failed))
            e._final = True  # type: ignore[attr-defined]
            raise e

    def _bin(self) -> str:
        if self._scribe_bin:
            return self._scribe_bin
        env = os.environ.get("SCRIBE_BIN")
        if env:
            return env
        found = shutil.which("scribe")
        if found:
            return found
        e = Unavailable(
            "no arbiter is running for %s and the `scribe` CLI was not found on PATH; "
            "pass scribe_bin= or set SCRIBE_BIN" % self.paths.db
        )
        e._final = True  # type: ignore[attr-defined]
        raise e

    def _start(self) -> None:
        """Auto-start: ``scribe --db PATH start``, then wait until the HTTP
        socket accepts. Refuses while a stopping marker is live (``scribe
        start`` would clear it: a stop must stay stopped)."""
        with self._start_lock:
            if self._accepts():
                return  # another thread started it meanwhile
            if self._await_starting():
                return
            if not self.autostart:
                raise self._no_arbiter()
            marker = read_marker(self.paths.stop_marker)
            if marker is not None:
                e = self._no_arbiter(marker)
                # Stopped on purpose: waiting it out would look like a hang.
                e._final = True  # type: ignore[attr-defined]
                raise e
            self._held_back()
            binary = self._bin()
            cmd = [
                os.fsencode(binary),
                b"--db",
                self.paths.db_b,
                b"--ready-timeout",
                b"%dms" % max(1, int(self.ready_timeout * 1000)),
                b"start",
                # A stop in force is respected, not cleared: a `stop --hold`
                # made while this start waited stays in force.
                b"--auto",
                # Migrations at open are waited for as this caller waits
                # for the writer.
                b"--starting-wait",
                b"%dms" % int(self._busy_wait() * 1000),
            ]
            def run(argv):
                return subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    timeout=max(self.ready_timeout, self._busy_wait()) + 30.0,
                )

            began = time.monotonic()
            try:
                proc = run(cmd)
                if proc.returncode == 2 and b"--starting-wait" in proc.stderr:
                    # A `scribe` older than this client.
                    cmd = cmd[:-2]
                    proc = run(cmd)
                if proc.returncode == 2 and b"--auto" in proc.stderr:
                    # Older still: a plain start (which would end a stop
                    # made while it waits).
                    proc = run(cmd[:-1])
            except OSError as e:
                err = Unavailable("cannot run %s to start the arbiter: %s (pass scribe_bin= or set SCRIBE_BIN)" % (binary, e))
                err._final = True  # type: ignore[attr-defined]
                raise err from e
            except subprocess.TimeoutExpired as e:
                raise Unavailable(
                    "`%s start` did not return within %.3gs"
                    % (binary, max(self.ready_timeout, self._busy_wait()) + 30.0)
                ) from e
            if proc.returncode != 0:
                still = starting(self.paths)
                if proc.returncode == 12 and still is not None:
                    # It holds the writer as it starts (migrations at open)
                    # past this caller's wait: busy, as sqlite3 would be.
                    raise busy_error(still, time.monotonic() - began)
                marker = read_marker(self.paths.stop_marker)
                if marker is not None:
                    e = self._no_arbiter(marker)
                    e._final = True  # type: ignore[attr-defined]
                    raise e
                final = holding_back(self.paths) is not None
                said = (proc.stderr or proc.stdout or b"").decode("utf-8", "replace").strip()
                if proc.returncode == _REFUSED_EXIT:
                    # Refused, not failed: the socket named serves another
                    # database, or this name is a hard link of a served
                    # one. Trying again starts one doomed arbiter after
                    # another (47 in a Scribe's 30 s), each failing to bind.
                    raise Refused(
                        "cannot start the arbiter for %s: %s" % (self.paths.db, said or "refused")
                    )
                where = os.path.dirname(self.paths.db)
                if not os.path.isdir(where):
                    # Its directory was moved or deleted (under a program
                    # that still holds its name): no start can succeed
                    # there, and each try waited out the whole timeout.
                    final = True
                    said = "its directory %s no longer exists (moved or deleted); %s" % (
                        where, said or "no output")
                e = Unavailable(
                    "cannot start the arbiter for %s (`scribe start` exited %d): %s"
                    % (self.paths.db, proc.returncode, said or "no output")
                )
                # Its start failed (and is recorded): the next would fail
                # the same way, so retrying would only start more.
                e._final = final  # type: ignore[attr-defined]
                raise e
            deadline = time.monotonic() + max(1.0, self.ready_timeout)
            pause = 0.001
            while not self._accepts():
                if time.monotonic() >= deadline:
                    raise Unavailable(
                        "the arbiter for %s started but its socket %s does not accept"
                        % (self.paths.db, self.paths.socket)
                    )
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
