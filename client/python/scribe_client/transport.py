"""HTTP/1.1 over a Unix socket, with the standard library only."""

import http.client
import socket
from typing import Dict, Optional, Tuple, Union

__all__ = ["UnixHTTPConnection", "roundtrip"]


class UnixHTTPConnection(http.client.HTTPConnection):
    """An ``http.client.HTTPConnection`` whose ``connect()`` opens an
    ``AF_UNIX`` stream socket at ``path`` instead of a TCP connection."""

    def __init__(self, path: Union[str, bytes], timeout: Optional[float] = None, paths=None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path
        # With the database's paths, only its arbiter may answer (see
        # ``reach``); without, whoever listens at ``path``.
        self.paths = paths

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            if self.paths is not None:
                from .reach import connect_checked

                connect_checked(sock, self.paths, "http_socket")
            else:
                sock.connect(self.unix_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def roundtrip(
    conn: UnixHTTPConnection,
    method: str,
    path: str,
    body: Optional[bytes],
    timeout: Optional[float],
) -> Tuple[int, Dict[str, str], bytes, bool]:
    """Sends one request on a connected ``conn`` and reads the whole
    answer: (status, headers with lower-case names, body, will_close)."""
    if conn.sock is not None:
        conn.sock.settimeout(timeout)
    headers = {"Host": "localhost", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=body, headers=headers)
    except (BrokenPipeError, ConnectionResetError):
        # The arbiter may answer before it has read the whole body (413
        # for a body over its limit) and close: that answer is still
        # there to read, and says why. Without one, the loss stands.
        try:
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException):
            resp = None
        if resp is None:
            raise
    else:
        resp = conn.getresponse()
    data = resp.read()
    hdrs = {k.lower(): v for k, v in resp.getheaders()}
    return resp.status, hdrs, data, bool(resp.will_close)
