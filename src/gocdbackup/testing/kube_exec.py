"""The streaming half of :class:`~gocdbackup.testing.kube.FakeKubeAPI`: pod ``exec`` and
``portforward`` over websockets, as the API server speaks them (``v5.channel.k8s.io`` and
``v4.channel.k8s.io``: one channel byte before each frame's payload, stdin 0, stdout 1,
stderr 2, the exit status as a ``Status`` document on 3, and v5's ``[255, channel]`` to close
stdin; for port forwarding, a data and an error channel per port, each opened by a frame of
the port number).  A pod's commands run here, as local processes, in the environment the test
gave the pod (e.g. ``PATH`` to PostgreSQL's tools and ``PGHOST``/``PGPORT`` of a local
server); its forwarded ports reach local addresses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, STATUS, CLOSE = 0, 1, 2, 3, 255
_CHUNK = 256 * 1024


def _exit_status(code: int) -> bytes:
    if code == 0:
        doc: dict[str, Any] = {"metadata": {}, "status": "Success"}
    else:
        doc = {
            "metadata": {},
            "status": "Failure",
            "message": f"command terminated with non-zero exit code: {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
        }
    return bytes([STATUS]) + json.dumps(doc).encode()


class PodExec:
    """What the fake does for ``exec`` and ``portforward`` on the pods the test declared."""

    def __init__(self) -> None:
        #: (namespace, pod) → environment of the commands run "in" it
        self.env: dict[tuple[str, str], dict[str, str]] = {}
        #: (namespace, pod) → {container port: (host, port)} it forwards to
        self.ports: dict[tuple[str, str], dict[int, tuple[str, int]]] = {}
        #: cut every exec stream (no status, connection dropped) after this many stdout bytes
        self.cut_after: int | None = None
        #: the argv of every command run, in order
        self.commands: list[list[str]] = []
        #: seconds every command waits before it starts (a slow pod)
        self.delay = 0.0
        #: the channel protocols this API server speaks, preferred first (an older server:
        #: v4 only, which cannot end a command's stdin)
        self.protocols: tuple[str, ...] = PROTOCOLS
        #: what went wrong inside the fake (a stream it had to drop), for a test to look at
        self.faults: list[str] = []

    async def run(self, request: web.Request, ns: str, pod: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=self.protocols, max_msg_size=0)
        await ws.prepare(request)
        try:
            await self._exec(ws, request, ns, pod)
        except BaseException as exc:
            # a fault of the fake itself (or its task cancelled): end the stream, so that a
            # client is never left waiting on a connection nothing will write to again
            self.faults.append(f"exec in {ns}/{pod}: {exc!r}")
            await _drop(ws)
            raise
        return ws

    async def _exec(
        self, ws: web.WebSocketResponse, request: web.Request, ns: str, pod: str
    ) -> None:
        argv = request.query.getall("command", [])
        self.commands.append(list(argv))
        env = {**os.environ, **self.env.get((ns, pod), {})}
        wants_stdin = request.query.get("stdin") in ("true", "1")
        await asyncio.sleep(self.delay)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if wants_stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as exc:  # no such executable in the "container"
            await ws.send_bytes(bytes([STDERR]) + f"exec: {exc.strerror}\n".encode())
            await ws.send_bytes(_exit_status(126))
            await ws.close()
            return
        cut = await self._pump(ws, proc, wants_stdin)
        if cut:
            return
        code = await proc.wait()
        await ws.send_bytes(_exit_status(code))
        await ws.close()

    async def _pump(
        self, ws: web.WebSocketResponse, proc: asyncio.subprocess.Process, wants_stdin: bool
    ) -> bool:
        """Relay until the process's output ends; True if the stream was cut on purpose."""
        sent = 0
        cut = asyncio.Event()

        async def out(stream: asyncio.StreamReader | None, channel: int) -> None:
            nonlocal sent
            assert stream is not None
            while chunk := await stream.read(_CHUNK):
                if channel == STDOUT and self.cut_after is not None:
                    if sent + len(chunk) > self.cut_after:
                        await ws.send_bytes(bytes([channel]) + chunk[: self.cut_after - sent])
                        cut.set()
                        return
                    sent += len(chunk)
                await ws.send_bytes(bytes([channel]) + chunk)

        async def stdin() -> None:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    continue
                data: bytes = msg.data
                if data[0] == CLOSE and data[1:2] == bytes([STDIN]):
                    _close(proc)
                elif data[0] == STDIN and proc.stdin is not None:
                    proc.stdin.write(data[1:])
                    with contextlib.suppress(ConnectionError):
                        await proc.stdin.drain()
            _close(proc)  # the client went away: stdin ends

        reader = asyncio.ensure_future(stdin()) if wants_stdin else None
        pumps: asyncio.Future[Any] = asyncio.gather(
            out(proc.stdout, STDOUT), out(proc.stderr, STDERR)
        )
        waiter: asyncio.Future[Any] = asyncio.ensure_future(cut.wait())
        await asyncio.wait({pumps, waiter}, return_when=asyncio.FIRST_COMPLETED)
        # the cut decides, not which of the two finished first: both may be done at once
        if cut.is_set():
            await _drop(ws)  # first: the client is released whatever follows
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            pumps.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pumps
            # read both pipes to their end before waiting: on Python 3.11 Process.wait()
            # returns only once every pipe is closed, and a pipe whose reader is over its
            # limit stops reading, so without this the wait (and the handler) never ends
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    await stream.read()
            await proc.wait()
        else:
            waiter.cancel()
        if reader is not None:
            reader.cancel()
        return cut.is_set()

    async def forward(self, request: web.Request, ns: str, pod: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=0)
        await ws.prepare(request)
        wanted = [int(p) for p in request.query.get("ports", "").split(",") if p]
        targets = self.ports.get((ns, pod), {})
        streams: dict[int, asyncio.StreamWriter] = {}
        tasks: list[Awaitable[None]] = []
        for ix, port in enumerate(wanted):
            data_ch, err_ch = 2 * ix, 2 * ix + 1
            prefix = port.to_bytes(2, "little")
            await ws.send_bytes(bytes([data_ch]) + prefix)
            await ws.send_bytes(bytes([err_ch]) + prefix)
            if port not in targets:
                await ws.send_bytes(bytes([err_ch]) + f"port {port} is not open".encode())
                continue
            reader, writer = await asyncio.open_connection(*targets[port])
            streams[data_ch] = writer
            tasks.append(_relay_out(ws, reader, data_ch))
        relays = [asyncio.ensure_future(t) for t in tasks]
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, payload = msg.data[0], msg.data[1:]
            target = streams.get(channel)
            if target is not None and payload:
                target.write(payload)
                await target.drain()
        for relay in relays:
            relay.cancel()
        for writer in streams.values():
            writer.close()
        return ws


async def _relay_out(ws: web.WebSocketResponse, reader: asyncio.StreamReader, channel: int) -> None:
    """The pod's side of a forwarded connection, to the client (which ends the stream)."""
    while data := await reader.read(_CHUNK):
        await ws.send_bytes(bytes([channel]) + data)


def _close(proc: asyncio.subprocess.Process) -> None:
    if proc.stdin is not None and not proc.stdin.is_closing():
        proc.stdin.close()


async def _drop(ws: web.WebSocketResponse) -> None:
    """End the connection without a close handshake or a status: a stream cut mid-way."""
    transport = ws._req.transport if ws._req is not None else None
    if transport is not None:
        transport.abort()
    else:  # no transport to abort: end it without a status all the same
        await ws.close()


Handler = Callable[[web.Request, str, str], Awaitable[web.StreamResponse]]
