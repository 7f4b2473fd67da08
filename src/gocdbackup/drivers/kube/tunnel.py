"""A local TCP port whose every connection is forwarded to a pod's port through the API server
(``pods/portforward``): how the PostgreSQL driver's SQL (snapshots, row counts, gocdnext's
rows, checks, the swap of a restore) reaches a database that only listens inside the cluster,
while pg_dump and pg_restore run in the pod itself (:mod:`gocdbackup.drivers.kube.exec`)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading

import websocket
from kubernetes import client

from gocdbackup.drivers.kube.exec import open_stream

log = logging.getLogger("gocdbackup.drivers.kube")

_DATA, _ERROR = 0, 1


class PortTunnel:
    """``127.0.0.1:local_port`` → ``port`` of ``pod`` (started on creation, closed by
    :meth:`close` or leaving the context).  Creation checks once that the pod can be reached
    (a refusal is a typed error here rather than a dropped connection later)."""

    def __init__(self, api: client.ApiClient, namespace: str, pod: str, port: int) -> None:
        self._api, self._path, self._port = api, f"/api/v1/namespaces/{namespace}/pods/{pod}", port
        self._what = f"forwarding port {port} of pod {namespace}/{pod}"
        self._open().close()  # reachable and permitted, or a typed error now
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.local_port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="gocdbackup-tunnel", daemon=True).start()

    def __repr__(self) -> str:
        return f"PortTunnel({self._what}, 127.0.0.1:{self.local_port})"

    def __enter__(self) -> PortTunnel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()

    def _open(self) -> websocket.WebSocket:
        query = [("ports", str(self._port))]
        return open_stream(self._api, f"{self._path}/portforward", query, self._what)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            ws = self._open()
        except Exception as exc:
            log.warning("%s: %s", self._what, exc)
            conn.close()
            return
        up = threading.Thread(target=self._upstream, args=(conn, ws), daemon=True)
        up.start()
        self._downstream(conn, ws)
        up.join(5)

    def _upstream(self, conn: socket.socket, ws: websocket.WebSocket) -> None:
        """What the local client sends, to the pod."""
        try:
            while data := conn.recv(256 * 1024):
                ws.send_binary(bytes([_DATA]) + data)
        except (OSError, websocket.WebSocketException):
            pass
        finally:
            with contextlib.suppress(OSError, websocket.WebSocketException):
                ws.close(timeout=1)

    def _downstream(self, conn: socket.socket, ws: websocket.WebSocket) -> None:
        """What the pod sends, to the local client (each channel's first frame is the port
        number, not data; an error channel frame ends the connection)."""
        opened: set[int] = set()
        try:
            while True:
                opcode, frame = ws.recv_data_frame(True)
                if opcode == websocket.ABNF.OPCODE_CLOSE or frame is None:
                    break
                if opcode != websocket.ABNF.OPCODE_BINARY or not frame.data:
                    continue
                channel, payload = frame.data[0], frame.data[1:]
                if channel not in opened:
                    opened.add(channel)
                    continue
                if channel == _ERROR:
                    log.warning("%s: %s", self._what, payload.decode(errors="replace"))
                    break
                conn.sendall(payload)
        except (OSError, websocket.WebSocketException):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
