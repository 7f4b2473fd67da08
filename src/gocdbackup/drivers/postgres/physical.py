"""A physical base backup of the whole server: ``pg_basebackup -D - -Ft -X fetch`` streamed
from its stdout (one tar of the data directory with the WAL the copy needs and, last, its
manifest), and the server's facts for the backup's consistency point.

The role needs the REPLICATION attribute (or to be a superuser) and ``pg_hba.conf`` must let it
make a replication connection; ``-X fetch`` needs the WAL written during the copy to stay on
the server until the end (``wal_keep_size``, or a WAL archive).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gocdbackup.drivers.postgres.tools import PgTool, tool_messages
from gocdbackup.errors import PreconditionFailed, ToolFailed
from gocdbackup.model.backup import ConsistencyPoint, DatabaseInfo

if TYPE_CHECKING:
    from gocdbackup.drivers.postgres.server import PostgresServer

_FACTS_SQL = (
    "SELECT now(), current_setting('server_version'), current_setting('server_version_num')::int,"
    " d.datname, pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding),"
    " (SELECT sum(pg_database_size(datname))::bigint FROM pg_database)"
    " FROM pg_database d WHERE d.datname = current_database()"
)


class BaseBackupStream:
    """pg_basebackup's stdout (read it to the end), and the version of the tool writing it."""

    def __init__(self, raw: Any, tool: PgTool) -> None:
        self._raw = raw
        self.tool = tool
        self.tool_version = tool.version

    def read(self, n: int = -1, /) -> bytes:
        data: bytes = self._raw.read(n)
        return data

    def readinto(self, buf: memoryview) -> int:
        n: int = self._raw.readinto(buf)
        return n


def _check_incremental(server: PostgresServer, major: int) -> None:
    if major < 17:
        raise PreconditionFailed(
            f"incremental base backups need PostgreSQL 17 or later (this server is {major}); "
            "take a full one (without --incremental); nothing was backed up"
        )
    with server.connect() as conn, server.translating():
        row = conn.execute("SELECT current_setting('summarize_wal')").fetchone()
    if row is None or row[0] != "on":
        raise PreconditionFailed(
            "incremental base backups need the server's summarize_wal = on (ALTER SYSTEM SET "
            "summarize_wal = on; SELECT pg_reload_conf()), then a full base backup to build "
            "on; nothing was backed up"
        )


@contextmanager
def base_backup(
    server: PostgresServer, incremental: bytes | None = None
) -> Iterator[BaseBackupStream]:
    """Run pg_basebackup against ``server`` (with ``incremental``, the manifest of the backup
    to build on: only what changed since); once the consumer has read the stream to its end,
    a non-zero exit raises :class:`ToolFailed`."""
    major = server.server_major()
    tool = server.find_tool("pg_basebackup", major, prefer_major=major)
    with tempfile.TemporaryDirectory(prefix="gocdbackup-incremental-") as scratch:
        extra = []
        if incremental is not None:
            _check_incremental(server, major)
            path = Path(scratch) / "backup_manifest"
            path.write_bytes(incremental)
            extra = [f"--incremental={path}"]
        with _run(server, tool, extra) as stream:
            yield stream


@contextmanager
def _run(server: PostgresServer, tool: PgTool, extra: list[str]) -> Iterator[BaseBackupStream]:
    args = [
        tool.path,
        f"--dbname={server.tool_conninfo()}",
        "--pgdata=-",
        "--format=tar",
        "--wal-method=fetch",
        "--checkpoint=fast",
        "--no-password",
        *extra,
    ]
    with server.run_tool(
        args, env=server.tool_env(), stdout=subprocess.PIPE, tool="pg_basebackup"
    ) as running:
        assert running.proc.stdout is not None
        yield BaseBackupStream(running.proc.stdout, tool)
        code = running.proc.wait()
        if code != 0:
            tail = running.stderr_tail()
            raise ToolFailed(
                "pg_basebackup", code, tail, messages=tool_messages("pg_basebackup", tail)
            )


class PgPhysical:
    """The :class:`~gocdbackup.ports.PhysicalSource` port on a real server."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server

    @property
    def name(self) -> str:
        return self.server.name

    def base_backup(self, incremental: bytes | None = None) -> Any:
        return base_backup(self.server, incremental)

    def physical_facts(
        self, *, end_lsn: str, timeline: int, tool_version: str
    ) -> tuple[ConsistencyPoint, DatabaseInfo]:
        return physical_facts(
            self.server, end_lsn=end_lsn, timeline=timeline, tool_version=tool_version
        )


def physical_facts(
    server: PostgresServer, *, end_lsn: str, timeline: int, tool_version: str
) -> tuple[ConsistencyPoint, DatabaseInfo]:
    """The consistency point of a base backup that ends at ``end_lsn`` on ``timeline`` (read
    just after it: the goose version is the one at that time), and the database ``server``
    names (its size: every database of the server, all of which the backup holds)."""
    with server.connect(autocommit=False) as conn, server.translating():
        row = conn.execute(_FACTS_SQL).fetchone()
        assert row is not None
        at, version, version_num, name, owner, encoding, size = row
        goose = server.schema_version_on(conn)
        conn.rollback()
    point = ConsistencyPoint(
        snapshot_at=at.astimezone(UTC),
        snapshot_id="",
        wal_lsn=end_lsn,
        timeline=timeline,
        server_version=str(version).split()[0],
        server_version_num=int(version_num),
        goose_version=goose,
    )
    database = DatabaseInfo(
        name=name,
        owner=owner,
        encoding=encoding,
        size_bytes=int(size or 0),
        pg_dump_version=tool_version,
    )
    return point, database
