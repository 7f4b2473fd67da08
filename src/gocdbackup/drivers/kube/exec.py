"""Commands in a pod's container over the API server's exec websocket, read frame by frame (the
client's buffered ``update()`` path copies every byte again per frame and crawls at a few MiB/s
on a dump).  A :class:`PodProcess` has the surface of :class:`subprocess.Popen` the PostgreSQL
driver uses (``stdin``, ``stdout``, ``wait``, ``poll``, ``kill``), so ``pg_dump`` and
``pg_restore`` run in the pod exactly as they run here.  The exit status comes from the status
channel; a stream that ends without one was cut, and says so."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
import threading
from typing import IO, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import websocket
from kubernetes import client
from kubernetes.stream.ws_client import create_websocket

from gocdbackup.drivers.kube.client import status_error
from gocdbackup.errors import KubernetesError

log = logging.getLogger("gocdbackup.drivers.kube")

STDIN, STDOUT, STDERR, STATUS, CLOSE = 0, 1, 2, 3, 255
V5 = "v5.channel.k8s.io"
_FRAME = 1024 * 1024  # stdin bytes per frame
#: the exit code a command gets when its stream ended without a status (cut)
CUT = -1


def _headers(api: client.ApiClient) -> dict[str, str]:
    headers = {"sec-websocket-protocol": f"{V5},v4.channel.k8s.io"}
    for setting in api.configuration.auth_settings().values():
        if setting.get("in") == "header" and setting.get("value"):
            headers[str(setting["key"])] = str(setting["value"])
    return headers


def _url(api: client.ApiClient, path: str, query: list[tuple[str, str]]) -> str:
    parts = urlsplit(str(api.configuration.host))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, urlencode(query), ""))


def open_stream(
    api: client.ApiClient, path: str, query: list[tuple[str, str]], what: str
) -> websocket.WebSocket:
    """A websocket to ``path`` (an exec or portforward subresource), its refusals typed by
    the status the API server answered the upgrade with."""
    try:
        ws: websocket.WebSocket = create_websocket(  # type: ignore[no-untyped-call]
            api.configuration, _url(api, path, query), _headers(api)
        )
    except websocket.WebSocketBadStatusException as exc:
        raise status_error(what, exc.status_code, exc.resp_body) from None
    except (OSError, websocket.WebSocketException) as exc:
        raise KubernetesError(
            f"{what}: cannot reach the Kubernetes API at {api.configuration.host} "
            f"({type(exc).__name__})"
        ) from None
    return ws


def _subprotocol(ws: websocket.WebSocket) -> str | None:
    """The channel protocol the API server chose (from the handshake's response headers)."""
    chosen = ws.getsubprotocol()
    if chosen:
        return str(chosen)
    for name, value in (ws.getheaders() or {}).items():
        if name.lower() == "sec-websocket-protocol":
            return str(value)
    return None


def _exit_code(doc: dict[str, Any]) -> tuple[int, str]:
    """(exit code, message) of the status channel's document."""
    if doc.get("status") == "Success":
        return 0, ""
    message = str(doc.get("message") or doc.get("reason") or "failed")
    for cause in (doc.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message")), message
            except (TypeError, ValueError):
                break
    return 126, message


class _Stdout(io.RawIOBase):
    def __init__(self, proc: PodProcess) -> None:
        self._proc = proc
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._buf:
            data = self._proc.next_stdout()
            if data is None:
                return 0
            self._buf = memoryview(data)
        n = min(len(buffer), len(self._buf))
        buffer[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class _Stdin:
    def __init__(self, proc: PodProcess) -> None:
        self._proc = proc
        self.closed = False

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        for at in range(0, len(view), _FRAME):
            self._proc.send(STDIN, view[at : at + _FRAME])
        return len(data)

    def flush(self) -> None:
        return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._proc.close_stdin()


class PodProcess:
    """``argv`` running in ``container`` of ``pod`` (see the module's docstring); stderr goes
    to ``stderr`` (a binary file), followed by a line saying how the command ended."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        pod: str,
        container: str,
        argv: list[str],
        *,
        stdin: bool,
        stdout: bool,
        stderr: IO[bytes],
    ) -> None:
        query = [("command", a) for a in argv] + [
            ("container", container),
            ("stdin", "true" if stdin else "false"),
            ("stdout", "true" if stdout else "false"),
            ("stderr", "true"),
            ("tty", "false"),
        ]
        what = f"running {argv[0]} in pod {namespace}/{pod} (container {container})"
        self._ws = open_stream(api, f"/api/v1/namespaces/{namespace}/pods/{pod}/exec", query, what)
        self._v5 = _subprotocol(self._ws) == V5
        self._stderr = stderr
        self._lock = threading.Lock()
        self.returncode: int | None = None
        self.args = argv
        self.stdin = _Stdin(self) if stdin else None
        self.stdout: IO[bytes] | None = (
            io.BufferedReader(_Stdout(self), 1024 * 1024) if stdout else None
        )

    # -- frames --------------------------------------------------------------------------------

    def send(self, channel: int, data: bytes | memoryview) -> None:
        try:
            with self._lock:
                self._ws.send_binary(bytes([channel]) + bytes(data))
        except (OSError, websocket.WebSocketException):
            raise BrokenPipeError("the exec stream is closed") from None

    def close_stdin(self) -> None:
        if not self._v5:
            raise KubernetesError(
                "the API server speaks only v4.channel.k8s.io, which cannot end a command's "
                "input: Kubernetes 1.30 or later is needed to restore through exec"
            )
        self.send(CLOSE, bytes([STDIN]))

    def _frame(self) -> tuple[int, bytes] | None:
        """The next (channel, payload), or None when the stream has ended."""
        if self.returncode is not None and not self._ws.connected:
            return None
        try:
            opcode, frame = self._ws.recv_data_frame(True)
        except (OSError, websocket.WebSocketException):
            opcode, frame = websocket.ABNF.OPCODE_CLOSE, None
        if opcode == websocket.ABNF.OPCODE_CLOSE or frame is None:
            self._ended()
            return None
        data = frame.data
        if opcode != websocket.ABNF.OPCODE_BINARY or not data:
            return CLOSE, b""
        return data[0], data[1:]

    def _ended(self) -> None:
        with self._lock:
            self._ws.close()
        if self.returncode is None:
            self.returncode = CUT
            self._stderr.write(
                b"\ngocdbackup: the exec stream ended without an exit status (cut: the "
                b"connection to the API server or the pod was lost)\n"
            )

    def next_stdout(self) -> bytes | None:
        """The next piece of stdout (stderr and the status are kept on the way), or None at
        the end."""
        while (got := self._frame()) is not None:
            channel, data = got
            if channel == STDOUT and data:
                return data
            self._other(channel, data)
        return None

    def _other(self, channel: int, data: bytes) -> None:
        if channel == STDERR:
            self._stderr.write(data)
        elif channel == STATUS:
            try:
                code, message = _exit_code(json.loads(data))
            except ValueError:
                code, message = 126, "unreadable exit status"
            self.returncode = code
            if code:
                self._stderr.write(f"\ngocdbackup: {message}\n".encode())

    # -- the Popen surface ---------------------------------------------------------------------

    def poll(self) -> int | None:
        return self.returncode if not self._ws.connected else None

    def wait(self, timeout: float | None = None) -> int:
        """Read to the end of the stream (stdout not yet read is discarded)."""
        if timeout is not None:
            self._ws.settimeout(timeout)
        while (got := self._frame()) is not None:
            if got[0] != STDOUT:
                self._other(*got)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, _signal: int) -> None:
        self.kill()

    def kill(self) -> None:
        """Drop the stream: the command loses its output (and its input ends)."""
        if self._ws.connected:
            with self._lock, contextlib.suppress(OSError, websocket.WebSocketException):
                if self._ws.sock is not None:
                    self._ws.sock.shutdown(socket.SHUT_RDWR)
                self._ws.close(timeout=1)
        if self.returncode is None:
            self.returncode = CUT

    def terminate(self) -> None:
        self.kill()


def pod_output(
    api: client.ApiClient, namespace: str, pod: str, container: str, argv: list[str]
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a short command in the pod."""
    with io.BytesIO() as err:
        proc = PodProcess(
            api, namespace, pod, container, argv, stdin=False, stdout=True, stderr=err
        )
        assert proc.stdout is not None
        out = proc.stdout.read()
        code = proc.wait()
        return code, out.decode(errors="replace"), err.getvalue().decode(errors="replace")
