"""``pg_receivewal``: the server's WAL over a replication connection, into a spool directory,
through a physical replication slot (so the server keeps what was not received yet).

It needs nothing installed where the server runs (the Helm chart's stock image), only a role
with REPLICATION and a replication line in ``pg_hba.conf``.  It retries when the server goes
away (a restart), and on SIGINT writes what it holds and exits cleanly.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gocdbackup.drivers.postgres.tools import run_checked, tool_messages
from gocdbackup.errors import ToolFailed

if TYPE_CHECKING:
    from gocdbackup.drivers.postgres.server import PostgresServer


def _receivewal(server: PostgresServer) -> str:
    major = server.server_major()
    return server.find_tool("pg_receivewal", major, prefer_major=major).path


def create_slot(server: PostgresServer, slot: str) -> None:
    """Create the physical replication slot ``slot`` unless it exists."""
    run_checked(
        [
            _receivewal(server),
            f"--dbname={server.tool_conninfo()}",
            f"--slot={slot}",
            "--create-slot",
            "--if-not-exists",
            "--no-password",
        ],
        tool="pg_receivewal",
        env=server.tool_env(),
    )


class Receiver:
    """A running pg_receivewal."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def failed(self) -> ToolFailed | None:
        """The error, if it exited on its own (it only exits on a failure it cannot retry)."""
        code = self.proc.poll()
        if code is None:
            return None
        tail = (self.proc.stderr.read() if self.proc.stderr else b"").decode(errors="replace")
        return ToolFailed(
            "pg_receivewal", code, tail, messages=tool_messages("pg_receivewal", tail)
        )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGINT: it writes what it received and exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def receiving(server: PostgresServer, slot: str, spool: Path) -> Iterator[Receiver]:
    """pg_receivewal into ``spool`` through ``slot``; stopped (SIGINT) on leaving."""
    proc = subprocess.Popen(
        [
            _receivewal(server),
            f"--dbname={server.tool_conninfo()}",
            f"--directory={spool}",
            f"--slot={slot}",
            "--no-password",
        ],
        env=server.tool_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a Ctrl-C at the terminal is ours to pass on, in order
    )
    receiver = Receiver(proc)
    try:
        yield receiver
    finally:
        receiver.stop()


def slot_retained_bytes(server: PostgresServer, slot: str) -> int | None:
    """How much WAL the server keeps for ``slot`` (None: no such slot)."""
    with server.connect() as conn, server.translating():
        row = conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint"
            " FROM pg_replication_slots WHERE slot_name = %s",
            (slot,),
        ).fetchone()
    return None if row is None or row[0] is None else int(row[0])
