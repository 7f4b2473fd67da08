"""What is read in one exported snapshot: the consistency point, the database's facts, exact row
counts, and the custom-format dump ``pg_dump --snapshot`` streams."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from gocdbackup.context import OpContext
from gocdbackup.drivers.postgres.tools import PgTool, tool_messages
from gocdbackup.errors import ToolFailed
from gocdbackup.model.backup import ConsistencyPoint, DatabaseInfo, TableRows

if TYPE_CHECKING:
    from gocdbackup.drivers.postgres.server import PostgresServer

_MAGIC = b"PGDMP"

_TABLES_SQL = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""

_POINT_SQL = (
    "SELECT now(),"
    " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text"
    "      ELSE pg_current_wal_lsn()::text END,"
    " current_setting('server_version'), current_setting('server_version_num')::int,"
    " CASE WHEN has_function_privilege('pg_control_checkpoint()', 'execute')"
    "      THEN (SELECT timeline_id FROM pg_control_checkpoint()) ELSE 0 END"
)

_DATABASE_SQL = (
    "SELECT datname, pg_get_userbyid(datdba), pg_encoding_to_char(encoding),"
    " pg_database_size(datname),"
    # from the catalog's page counts: opening the tables would wait on their locks
    " (SELECT coalesce(sum(c.relpages + coalesce(t.relpages, 0)), 0)::bigint"
    "         * current_setting('block_size')::bigint"
    "  FROM pg_class c LEFT JOIN pg_class t ON t.oid = c.reltoastrelid"
    "  WHERE c.relkind IN ('r', 'm') AND c.relnamespace NOT IN"
    "  ('pg_catalog'::regnamespace, 'information_schema'::regnamespace))"
    " FROM pg_database WHERE datname = current_database()"
)


class PgSnapshot:
    """A :class:`~gocdbackup.ports.Snapshot` on the connection that exported it (its
    transaction is the snapshot: the server ends it when the context that made it is left)."""

    def __init__(
        self,
        server: PostgresServer,
        conn: psycopg.Connection[Any],
        snapshot_id: str,
        dump_tool: PgTool,
    ) -> None:
        self._server = server
        self._conn = conn
        self._snapshot_id = snapshot_id
        self._dump_tool = dump_tool

    @property
    def snapshot_id(self) -> str:
        return self._snapshot_id

    def _one(self, query: str) -> tuple[Any, ...]:
        with self._server.translating(), self._conn.cursor() as cur:
            cur.execute(query)
            row = cur.fetchone()
        assert row is not None
        return tuple(row)

    def point(self) -> ConsistencyPoint:
        at, lsn, version, version_num, timeline = self._one(_POINT_SQL)
        return ConsistencyPoint(
            snapshot_at=at.astimezone(UTC),
            snapshot_id=self._snapshot_id,
            wal_lsn=str(lsn or ""),
            timeline=int(timeline or 0),
            server_version=str(version).split()[0],
            server_version_num=int(version_num),
            goose_version=self._server.schema_version_on(self._conn),
        )

    def database(self) -> DatabaseInfo:
        name, owner, encoding, size, data = self._one(_DATABASE_SQL)
        return DatabaseInfo(
            name=name,
            owner=owner,
            encoding=encoding,
            size_bytes=int(size),
            data_bytes=int(data),
            pg_dump_version=self._dump_tool.version,
        )

    def count_rows(self) -> tuple[TableRows, ...]:
        return count_tables(self._conn, self._server)

    @contextmanager
    def dump(self, ctx: OpContext) -> Iterator[DumpReader]:
        args = [
            self._dump_tool.path,
            "--format=custom",
            "--compress=0",
            f"--snapshot={self._snapshot_id}",
            f"--dbname={self._server.tool_conninfo()}",
        ]
        with self._server.run_tool(
            args, env=self._server.tool_env(), stdout=subprocess.PIPE, tool="pg_dump"
        ) as running:
            assert running.proc.stdout is not None
            reader = DumpReader(running.proc.stdout)
            yield reader
            # the consumer has read to EOF: now the outcome must be a clean exit
            code = running.proc.wait()
            if code != 0:
                tail = running.stderr_tail()
                raise ToolFailed("pg_dump", code, tail, messages=tool_messages("pg_dump", tail))
            if not reader.valid:
                raise ToolFailed("pg_dump", code, "output is not a custom-format archive")
            self._server.check_toc(reader.head, self._dump_tool.major)


#: the archive's first bytes kept to check its table of contents once pg_dump is done (the
#: TOC comes first; gocdnext's takes about 100 KB)
HEAD_BYTES = 16 * 1024 * 1024


class DumpReader:
    """pg_dump's stdout, checking that it starts like a custom-format archive and keeping its
    head (:data:`HEAD_BYTES`) for the table-of-contents check."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.bytes_read = 0
        self._head = bytearray()

    @property
    def valid(self) -> bool:
        return self._head[: len(_MAGIC)] == _MAGIC

    @property
    def head(self) -> bytes:
        return bytes(self._head)

    def _keep(self, data: bytes | memoryview) -> None:
        if len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]

    def readinto(self, buf: memoryview) -> int:
        n: int = self._raw.readinto(buf)
        self._keep(buf[:n])
        self.bytes_read += n
        return n

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._raw.read(n)
        self._keep(data)
        self.bytes_read += len(data)
        return data


def count_tables(
    conn: psycopg.Connection[Any],
    server: PostgresServer,
    dbname: str | None = None,
    *,
    counted: Mapping[str, int] | None = None,
) -> tuple[TableRows, ...]:
    """Exact row counts of every ordinary table (not the catalogs', not an extension's) of the
    connection's database, in its current transaction (those in ``counted`` are taken from
    it, not counted again)."""
    out = []
    known = counted or {}
    with server.translating(dbname), conn.cursor() as cur:
        cur.execute(_TABLES_SQL)
        tables = cur.fetchall()
        for schema, name in tables:
            if f"{schema}.{name}" in known:
                out.append(TableRows(name=f"{schema}.{name}", rows=known[f"{schema}.{name}"]))
                continue
            cur.execute(
                sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(name)
                )
            )
            row = cur.fetchone()
            assert row is not None
            out.append(TableRows(name=f"{schema}.{name}", rows=int(row[0])))
    return tuple(out)
