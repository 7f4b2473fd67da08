"""A fault-injecting HTTP reverse proxy for the S3 tests (standard library only).

Every request is forwarded to an upstream on 127.0.0.1 (the moto server) unchanged: method,
path and query, headers (the ``Host`` header too, which SigV4 signs) and body.  A seeded
:class:`random.Random` picks which requests fail instead:

* ``error_rate``: answered with ``503 SlowDown`` and S3's XML error body, never forwarded;
* ``reset_rate``: the request is read and the connection is reset (TCP RST), never forwarded;
* ``lost_response_rate``: the request IS forwarded (the upstream applies it) and then the
  connection is reset: the client cannot know whether its write happened;
* ``fault_methods``: only requests with these HTTP methods fail (all when ``None``).

``stats`` counts every kind of answer, so a test can prove the faults really happened.  The
proxy is bounded: it only ever connects to 127.0.0.1, every upstream call has a timeout, and
after ``max_requests`` requests it answers ``403 ProxyRequestLimit`` (not retryable), so a
runaway retry loop fails the test instead of running forever.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

Fault = Literal["503", "reset", "lost_response"]

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    b"<RequestId>FAULTYPROXY</RequestId></Error>"
)
LIMIT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>ProxyRequestLimit</Code><Message>The test proxy's request limit was "
    b"reached.</Message><RequestId>FAULTYPROXY</RequestId></Error>"
)

# RFC 9110 section 7.6.1; Content-Length is recomputed, Expect is answered by the proxy itself
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",
    }
)
_MAX_BODY = 256 * 1024 * 1024


@dataclass
class ProxyStats:
    requests: int = 0
    forwarded: int = 0
    injected_503: int = 0
    resets: int = 0
    lost_responses: int = 0
    upstream_errors: int = 0
    over_limit: int = 0
    #: (method, fault) -> count, to see which S3 calls were hit
    by_method: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def faults(self) -> int:
        return self.injected_503 + self.resets + self.lost_responses


class FaultyProxy:
    """``with FaultyProxy("http://127.0.0.1:PORT", error_rate=0.05) as proxy: proxy.endpoint``"""

    def __init__(
        self,
        upstream: str,
        *,
        error_rate: float = 0.05,
        reset_rate: float = 0.0,
        lost_response_rate: float = 0.0,
        fault_methods: frozenset[str] | None = None,
        seed: int = 20261120,
        max_requests: int = 20_000,
        upstream_timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname != "127.0.0.1" or parts.port is None:
            raise ValueError(f"the proxy only forwards to http://127.0.0.1:PORT, not {upstream}")
        self.upstream_host: str = parts.hostname
        self.upstream_port: int = parts.port
        self.error_rate = error_rate
        self.reset_rate = reset_rate
        self.lost_response_rate = lost_response_rate
        self.fault_methods = fault_methods
        self.max_requests = max_requests
        self.upstream_timeout = upstream_timeout
        self.stats = ProxyStats()
        self._rng = random.Random(seed)  # fault injection, not cryptography
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultyProxy:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="faulty-proxy",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()  # no new connections
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:  # idle keep-alive connections: wake their threads
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()  # joins the handler threads
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def set_rates(
        self,
        *,
        error_rate: float = 0.0,
        reset_rate: float = 0.0,
        lost_response_rate: float = 0.0,
        fault_methods: frozenset[str] | None = None,
    ) -> None:
        """New fault shares; ``fault_methods`` limits the faults to those HTTP methods."""
        with self._lock:
            self.error_rate = error_rate
            self.reset_rate = reset_rate
            self.lost_response_rate = lost_response_rate
            self.fault_methods = fault_methods

    # -- used by the handler ---------------------------------------------------------------

    def _decide(self, method: str) -> Fault | Literal["limit"] | None:
        with self._lock:
            self.stats.requests += 1
            if self.stats.requests > self.max_requests:
                self.stats.over_limit += 1
                return "limit"
            roll = self._rng.random()
            fault: Fault | None = None
            if self.fault_methods is not None and method not in self.fault_methods:
                pass
            elif roll < self.error_rate:
                fault = "503"
                self.stats.injected_503 += 1
            elif roll < self.error_rate + self.reset_rate:
                fault = "reset"
                self.stats.resets += 1
            elif roll < self.error_rate + self.reset_rate + self.lost_response_rate:
                fault = "lost_response"
                self.stats.lost_responses += 1
            if fault is not None:
                self.stats.by_method[method, fault] += 1
            return fault

    def _count(self, what: Literal["forwarded", "upstream_errors"]) -> None:
        with self._lock:
            setattr(self.stats, what, getattr(self.stats, what) + 1)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultyProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and "Expect: 100-continue" is answered
    timeout = 30  # an idle client connection is closed after this long
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.proxy._track(self.connection, add=True)

    def finish(self) -> None:
        self.server.proxy._track(self.connection, add=False)
        with contextlib.suppress(OSError):  # the connection was reset on purpose
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        return  # quiet: the moto log has every request

    def do_GET(self) -> None:
        self._proxy()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    # -- one request -----------------------------------------------------------------------

    def _proxy(self) -> None:
        body = self._read_body()
        proxy = self.server.proxy
        fault = proxy._decide(self.command)
        if fault == "limit":
            self._answer(403, "Forbidden", LIMIT)
            return
        if fault == "503":
            self._answer(503, "Slow Down", SLOW_DOWN)
            return
        if fault == "reset":
            self._reset()
            return
        try:
            status, reason, headers, data = self._forward(body)
        except (OSError, http.client.HTTPException) as exc:
            proxy._count("upstream_errors")
            self._answer(502, "Bad Gateway", f"upstream failed: {exc}".encode())
            return
        proxy._count("forwarded")
        if fault == "lost_response":
            self._reset()
            return
        self.send_response_only(status, reason)
        no_body = self.command == "HEAD" or status in (204, 304) or status < 200
        for name, value in headers:
            lower = name.lower()
            if lower in _HOP_BY_HOP and not (no_body and lower == "content-length"):
                continue
            self.send_header(name, value)
        if not no_body:
            self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not no_body:
            self.wfile.write(data)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537).strip():  # trailers
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(3)  # CRLF after the chunk
                if len(out) > _MAX_BODY:
                    raise ValueError("request body too large for the test proxy")
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise ValueError("request body too large for the test proxy")
        return self.rfile.read(length) if length else b""

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        proxy = self.server.proxy
        conn = http.client.HTTPConnection(
            proxy.upstream_host, proxy.upstream_port, timeout=proxy.upstream_timeout
        )
        try:
            # the original Host header goes through unchanged: SigV4 signed it
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            had_length = "Content-Length" in self.headers or "Transfer-Encoding" in self.headers
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    conn.putheader(name, value)
            if body or had_length:
                conn.putheader("Content-Length", str(len(body)))
            conn.putheader("Connection", "close")
            conn.endheaders(body or None)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.reason, resp.getheaders(), data
        finally:
            conn.close()

    def _answer(self, status: int, reason: str, body: bytes) -> None:
        self.send_response_only(status, reason)
        self.send_header("Content-Type", "application/xml")
        self.send_header("x-amz-request-id", "FAULTYPROXY")
        if self.command == "HEAD":
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0) and no response: "connection reset by peer"."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
