"""How ``Scribe`` talks to the arbiter: one kept-alive HTTP connection per
thread on its Unix socket, a request and its parsed answer, a connection
the arbiter closed while idle opened again, and an arbiter started when
none answers (``autostart.py``)."""

import http.client
import json
import socket
import threading
import time
from typing import Any, Dict, Optional

from .errors import ProtocolError, ScribeError, Timeout, Unavailable, from_response
from .transport import UnixHTTPConnection, roundtrip

#: The arbiter closes a connection that sends no request head for ~10 s;
#: a kept-alive connection idle for longer than this is not reused.
_KEEPALIVE_IDLE = 8.0


class Calls:
    """The connection half of ``Scribe`` (a mixin: it uses the client's
    ``paths``, ``call_timeout``, ``_tls()``, ``_open`` and its lock, and
    the auto-start's ``_start``)."""

    def _register(self, conn: Any) -> Any:
        with self._open_lock:
            self._open.append(conn)
        return conn

    def _unregister(self, conn: Any) -> None:
        with self._open_lock:
            try:
                self._open.remove(conn)
            except ValueError:
                pass

    def _drop_http(self, loc: threading.local) -> None:
        conn = loc.http
        loc.http = None
        if conn is not None:
            if conn in loc.owned:
                loc.owned.remove(conn)
            self._unregister(conn)
            try:
                conn.close()
            except OSError:
                pass

    def _call(
        self, method: str, path: str, body: Optional[bytes], timeout: float, *, autostart: bool
    ) -> Dict[str, Any]:
        """One request; the parsed JSON answer, or the error it stands for."""
        status, headers, data = self._exchange(method, path, body, timeout, autostart)
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        if status == 200:
            if not isinstance(parsed, dict):
                raise ProtocolError("the arbiter answered %s %s with a body that is not a JSON object" % (method, path), status=status)
            return parsed
        raise from_response(status, parsed, headers.get("retry-after"))

    def _exchange(
        self, method: str, path: str, body: Optional[bytes], timeout: float, autostart: bool
    ):
        loc = self._tls()
        if loc.http is not None and time.monotonic() - loc.http_used > _KEEPALIVE_IDLE:
            self._drop_http(loc)
        reused = loc.http is not None
        if loc.http is None:
            loc.http = self._own(loc, self._connect(autostart))
        try:
            result = self._send(loc, method, path, body, timeout)
        except _Lost as lost:
            if not reused:
                raise lost.error from lost.cause
            # A kept-alive connection the arbiter had closed: reconnect and
            # resend (a write carries its key, so this is safe).
            loc.http = self._own(loc, self._connect(autostart))
            try:
                result = self._send(loc, method, path, body, timeout)
            except _Lost as again:
                raise again.error from again.cause
        status, headers, data, will_close = result
        loc.http_used = time.monotonic()
        if will_close:
            self._drop_http(loc)
        return status, headers, data

    def _send(self, loc, method, path, body, timeout):
        try:
            return roundtrip(loc.http, method, path, body, timeout)
        except socket.timeout as e:
            self._drop_http(loc)
            raise Timeout(
                "no answer from the arbiter within %.3gs (%s %s); a write may or may not "
                "have committed: retry with the same key" % (timeout, method, path)
            ) from e
        except (OSError, http.client.HTTPException) as e:
            self._drop_http(loc)
            raise _Lost(
                Unavailable("connection to the arbiter on %s lost: %s" % (self.paths.http_socket, e or type(e).__name__)),
                e,
            ) from e

    def _connect(self, autostart: bool) -> UnixHTTPConnection:
        try:
            return self._try_connect()
        except (FileNotFoundError, ConnectionRefusedError):
            pass  # nobody answers: start one
        if not autostart and not self._await_starting():
            raise self._no_arbiter()
        if autostart:
            self._start()
        try:
            return self._try_connect()
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise Unavailable("the arbiter started but %s refuses: %s" % (self.paths.http_socket, e)) from e

    def _try_connect(self) -> UnixHTTPConnection:
        conn = UnixHTTPConnection(self.paths.http_socket_b, timeout=self.call_timeout, paths=self.paths)
        try:
            conn.connect()
        except (FileNotFoundError, ConnectionRefusedError):
            raise
        except OSError as e:
            raise Unavailable("cannot connect to %s: %s" % (self.paths.http_socket, e)) from e
        return self._register(conn)


class _Lost(Exception):
    """A connection failed mid-request (internal: decides on a resend)."""

    def __init__(self, error: ScribeError, cause: BaseException) -> None:
        super().__init__(str(error))
        self.error = error
        self.cause = cause
