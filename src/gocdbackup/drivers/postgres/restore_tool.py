"""Running ``pg_restore`` into a database: the whole dump streamed through its stdin, or one
section or table of it, or (``-j``) the table of contents from a temporary file.

Where the tool runs is the server's business (:meth:`PostgresServer.run_tool`: here, or in a
pod); only a table of contents (the schema, no rows) is ever written to a file, and only when
the tool can read files of this machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from gocdbackup.drivers.postgres.tools import (
    major_of,
    only_transaction_timeout_errors,
    tool_messages,
)
from gocdbackup.errors import ToolFailed

if TYPE_CHECKING:
    from gocdbackup.drivers.postgres.server import PostgresServer

log = logging.getLogger("gocdbackup.drivers.postgres")


def pg_restore(
    server: PostgresServer,
    parts: Iterable[bytes],
    name: str,
    *,
    role: str | None,
    min_tool_version: str,
    extra: Sequence[str] = (),
    jobs: int = 1,
) -> None:
    """``pg_restore --no-owner --no-acl [extra]`` of the archive ``parts`` make into ``name``,
    streamed through stdin; with ``jobs`` above 1 (and a tool that reads local files) written
    to a temporary file first and restored with ``-j``.  If ``parts`` raises, the tool is
    stopped and the error propagates."""
    server_major = server.server_major()
    tool = server.find_tool("pg_restore", major_of(min_tool_version), prefer_major=server_major)
    # pg_restore 17+ starts every session with "SET transaction_timeout", which servers
    # before 17 reject; that one error is harmless, so it is tolerated (and only it)
    tolerate = tool.major >= 17 > server_major
    args = [tool.path, "--no-owner", "--no-acl", f"--dbname={server.tool_conninfo(name)}"]
    if not tolerate:
        args.append("--exit-on-error")
    if role:
        args.append(f"--role={role}")
    args.extend(extra)
    env = server.tool_env()
    env["PGOPTIONS"] = " ".join(
        [env.get("PGOPTIONS", ""), *(f"-c {k}={v}" for k, v in server.restore_settings.items())]
    ).strip()
    with _archive_file(parts if jobs > 1 and server.tools_read_local_files else None) as path:
        if path is not None:
            args += [f"--jobs={jobs}", path]
        with server.run_tool(
            args,
            env=env,
            stdin=subprocess.DEVNULL if path else subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            tool="pg_restore",
        ) as running:
            if path is None:
                pipe = running.proc.stdin
                assert pipe is not None
                try:
                    for data in parts:  # an error here leaves the context: the tool is stopped
                        pipe.write(data)
                    pipe.close()
                except BrokenPipeError:
                    log.debug("pg_restore stopped reading early")
            code = running.proc.wait()
            if code != 0 and not (
                tolerate and only_transaction_timeout_errors(running.stderr_all())
            ):
                tail = running.stderr_tail()
                raise ToolFailed(
                    "pg_restore", code, tail, messages=tool_messages("pg_restore", tail)
                )


@contextlib.contextmanager
def _archive_file(parts: Iterable[bytes] | None) -> Iterator[str | None]:
    """``parts`` in a private temporary file (removed on leaving); None without parts."""
    if parts is None:
        yield None
        return
    fd, path = tempfile.mkstemp(prefix="gocdbackup-toc-", suffix=".dump")
    try:
        with os.fdopen(fd, "wb") as out:
            for data in parts:
                out.write(data)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
