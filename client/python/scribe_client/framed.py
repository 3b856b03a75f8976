"""scribe's own framing on the arbiter's socket, with JSON bodies: the lean
path for writes from Python (``http.client`` costs more than the write).

A connection opens with ``b"scribe" 1 b"j"``; then each request and each
answer is a frame ``LEN (u32 LE) ID (u32 LE) BODY``. Requests here are
sent one at a time per connection (the answer to each is read before the
next is sent), which is what a DB-API connection does anyway.
"""

import json
import os
import socket
import struct
import threading
import time
from typing import Any, Dict, Optional

from .errors import ProtocolError, Refused, ScribeError, Timeout, Unavailable, from_response
from .paths import Paths
from .reach import check_served, connect_checked
from .values import dumps as _dumps

__all__ = ["FramedConnection", "PROTOCOL_VERSION"]

#: The request types' version, as the arbiter checks it at hello.
PROTOCOL_VERSION = 11

_PREAMBLE = b"scribe\x01j"
_HEADER = struct.Struct("<II")
_MAX_FRAME = 16 * 1024 * 1024

_decode = json.JSONDecoder().decode


def _spin_window() -> float:
    """Seconds a lone call polls for its answer before it sleeps:
    ``SCRIBE_SPIN_US`` (µs; 0 never polls), else 100 µs."""
    try:
        return max(int(os.environ.get("SCRIBE_SPIN_US", "100")), 0) / 1e6
    except ValueError:
        return 100e-6


#: Waking a sleeping process costs more than a small write's answer takes
#: to come (tens of µs each way on a virtual machine whose idle CPU
#: halts), so a call polls for its answer this long before it sleeps.
#: After a poll that misses, the next 1, 2, 4 … 256 calls do not poll (one
#: hit resets it): where answers never come that soon, polling costs one
#: window in 257 calls. A poll whose ``sched_yield`` ran another process
#: (the CPU is wanted: polling would take it from others) stops there, a
#: miss. The arbiter's socket thread follows the same rule.
SPIN = _spin_window()
_MAX_SKIP = 256
_CONTENDED = 20e-6
_monotonic = time.monotonic
_sched_yield = getattr(os, "sched_yield", lambda: None)


def _loads(body: bytes) -> Any:
    """An answer's JSON (always UTF-8: ``json.loads`` would first guess
    the encoding of bytes, on every answer)."""
    return _decode(body.decode("utf-8"))


def _outcome(answer: Any) -> Any:
    """An answer's ``ok`` value, or the error it stands for (returned)."""
    parsed = _loads(answer)
    if "ok" in parsed:
        return parsed["ok"]
    err = parsed.get("error")
    if isinstance(err, dict):
        return from_response(0, err)
    return ProtocolError("the arbiter answered with neither ok nor error")


class Lost(Exception):
    """The connection failed; ``sent`` says whether the request had gone out
    whole (its outcome is then unknown)."""

    def __init__(self, why: str, sent: bool) -> None:
        super().__init__(why)
        self.sent = sent


class FramedConnection:
    """One connection to the arbiter's socket (rows come back as arrays)."""

    def __init__(self, paths: Paths, timeout: float) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.closed = False
        self.lock = threading.Lock()
        self.next_id = 0
        self.buf = bytearray()
        self.timeout = None
        # The poll's back-off: calls still to skip, and the latest skip.
        self.skip_left = 0
        self.skip = 0
        try:
            self.sock.settimeout(timeout)
            connect_checked(self.sock, paths, "socket")
            # Blocking, with the kernel's own timeouts: no poll() before
            # every send and receive, as a Python socket timeout costs.
            self.sock.settimeout(None)
            # Sends wait only when the arbiter stops reading: one send
            # timeout for the connection's life. The receive timeout
            # follows each call's (set when it changes: a transaction's
            # calls have three, and each change is a system call).
            self.send_timeout = max(timeout, 0.001)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(self.send_timeout))
            self._deadline(timeout)
            self.sock.sendall(_PREAMBLE)
            self.hello = self.call({"hello": {"version": PROTOCOL_VERSION, "rows": "arrays", "decltypes": True}}, timeout)
            check_served(self.hello, paths)
        except BaseException:
            self.sock.close()
            raise

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def __del__(self) -> None:
        # A drop-in connection the program never closed: its socket goes
        # quietly, as sqlite3's connection does (no ResourceWarning).
        sock = getattr(self, "sock", None)
        if sock is not None:
            try:
                self.close()
            except BaseException:  # noqa: BLE001  a signal's, in a finaliser: nowhere to go
                pass

    def call(self, request: Dict[str, Any], timeout: Optional[float]) -> Any:
        """Sends one request and returns its ``ok`` value, or raises the
        error it stands for (``Lost`` when the connection failed)."""
        outcome = _outcome(self._exchange([_dumps(request).encode("utf-8")], timeout)[0])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def call_watched(self, request: Dict[str, Any], timeout: float, every: float, alive) -> Any:
        """As ``call``, for a request that may take long (migrations):
        waits up to ``timeout``, and every ``every`` seconds without an
        answer calls ``alive()``, which raises when the arbiter stopped
        answering (so that a frozen one is given up on, not waited for)."""
        body = _dumps(request).encode("utf-8")
        outcome = _outcome(self._exchange([body], every, watch=(_monotonic() + timeout, alive))[0])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def call_pair(self, first: Dict[str, Any], second: Dict[str, Any], timeout: Optional[float]) -> list:
        """Sends two requests in one write and returns both outcomes, in
        order: each the ``ok`` value or the error it stands for (not
        raised). ``Lost`` and ``Timeout`` are raised."""
        bodies = [_dumps(first).encode("utf-8"), _dumps(second).encode("utf-8")]
        return [_outcome(a) for a in self._exchange(bodies, timeout)]

    def _exchange(self, bodies: list, timeout: Optional[float], watch=None) -> list:
        """Sends the frames of ``bodies`` in one write; returns their
        answers' bodies, in the same order. ``watch``: ``(deadline,
        alive)``, ``timeout`` being then a slice of the wait (see
        ``call_watched``). An exception of the program's own (a signal
        handler's, ``KeyboardInterrupt``) raised in the middle closes the
        connection: the exchange is cut anywhere in a frame, and a write
        session it began would otherwise hold the writer for its lease
        (the arbiter ends a connection's sessions when it closes)."""
        with self.lock:
            try:
                return self._exchange_locked(bodies, timeout, watch)
            except ScribeError:
                raise
            except BaseException:
                self.close()
                raise

    def _exchange_locked(self, bodies: list, timeout: Optional[float], watch) -> list:
        out = bytearray()
        rids = []
        for body in bodies:
            if len(body) > _MAX_FRAME:
                # The arbiter would close the connection on it (its
                # frame limit) before reading the batch: refused here,
                # as it is, and nothing is sent.
                raise Refused(
                    "a request of %d bytes is over the %d bytes one request may carry "
                    "(the arbiter's batch limit, 8 MiB by default, is lower): nothing was "
                    "written" % (len(body), _MAX_FRAME)
                )
            self.next_id = (self.next_id + 1) & 0xFFFFFFFF
            rids.append(self.next_id)
            out += _HEADER.pack(len(body), self.next_id)
            out += body
        try:
            self._deadline(timeout)
            self.sock.sendall(out)
        except (socket.timeout, BlockingIOError) as e:
            raise Lost("no room to send within %.3gs" % self.send_timeout, sent=False) from e
        except OSError as e:
            raise Lost(str(e) or type(e).__name__, sent=False) from e
        answers: Dict[int, Any] = {}
        try:
            if SPIN:  # one call, or a begin and its first statement
                if self.skip_left:
                    self.skip_left -= 1
                elif self._poll():
                    self.skip = 0
                else:
                    self.skip = min(max(self.skip * 2, 1), _MAX_SKIP)
                    self.skip_left = self.skip
            while len(answers) < len(rids):
                try:
                    got_id, answer = self._frame()
                except (socket.timeout, BlockingIOError):
                    if watch is None or _monotonic() >= watch[0]:
                        raise
                    watch[1]()  # raises when the arbiter no longer answers
                    continue
                if got_id in rids:
                    answers[got_id] = answer
                elif got_id == 0:
                    # To the whole connection: why the arbiter closes
                    # it (refused at hello, say), before it does.
                    said = _outcome(answer)
                    if isinstance(said, Exception):
                        self.close()  # it reads no more: the next call reconnects
                        if getattr(said, "category", None) == "shutting_down":
                            # Its farewell, after answering all it read:
                            # these requests it never read (as if not
                            # sent; a session on it ended with it).
                            raise Lost("the arbiter stopped before it read the request", sent=False)
                        raise said
        except (socket.timeout, BlockingIOError) as e:
            raise Timeout(
                "no answer from the arbiter within %.3gs; a write may or may not have "
                "committed" % (timeout or 0)
            ) from e
        except OSError as e:
            raise Lost(str(e) or type(e).__name__, sent=True) from e
        return [answers[r] for r in rids]

    def _deadline(self, timeout: Optional[float]) -> None:
        """SO_RCVTIMEO, set only when it changes."""
        if timeout == self.timeout:
            return
        secs = 0.0 if timeout is None else max(timeout, 0.001)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(secs))
        self.timeout = timeout

    def _poll(self) -> bool:
        """Reads what comes within ``SPIN`` without sleeping; True if
        anything did (False too when the poll stopped for another process:
        callers are many, and polling would take CPU from the arbiter)."""
        deadline = _monotonic() + SPIN
        recv = self.sock.recv
        while True:
            try:
                chunk = recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                now = _monotonic()
                if now >= deadline:
                    return False
                _sched_yield()  # a runnable process on this CPU first
                if _monotonic() - now > _CONTENDED:
                    return False  # one ran: the machine is busy
                continue
            if not chunk:
                raise ConnectionResetError("the arbiter closed the connection")
            self.buf += chunk
            return True

    def _frame(self):
        buf = self.buf
        while True:
            if len(buf) >= 8:
                length, rid = _HEADER.unpack_from(buf)
                if length > _MAX_FRAME:
                    raise ProtocolError("the arbiter sent a frame of %d bytes" % length)
                if len(buf) >= 8 + length:
                    body = buf[8 : 8 + length]  # a copy already (json takes it as is)
                    del buf[: 8 + length]
                    return rid, body
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("the arbiter closed the connection")
            buf += chunk


def _timeval(secs: float) -> bytes:
    """A ``struct timeval`` of ``secs`` (0: no timeout)."""
    return struct.pack("ll", int(secs), int((secs % 1) * 1_000_000))


def connect(paths: Paths, timeout: float) -> FramedConnection:
    """Connects; ``Unavailable`` (with ``.missing``) when nothing listens."""
    path = paths.socket_b
    try:
        return FramedConnection(paths, timeout)
    except (FileNotFoundError, ConnectionRefusedError) as e:
        err = Unavailable("nothing answers on %s: %s" % (path.decode(errors="replace"), e))
        err.missing = True  # type: ignore[attr-defined]
        raise err from e
    except Lost as e:
        raise Unavailable("the arbiter closed the connection at hello: %s" % e) from e
    except ScribeError:
        raise
    except OSError as e:
        raise Unavailable("cannot connect to %s: %s" % (path.decode(errors="replace"), e)) from e
