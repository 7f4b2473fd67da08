"""gocdnext's SQL, the one place it is spelled: the rows that reference artefact-store objects
(read in a backup's snapshot, streamed for an orphan scan, looked up now, retired), the artefact
store's setting, the values sealed with its application key (read, resealed), and goose's
version.  What the tables and columns *are* is in
:mod:`gocdbackup.gocdnext`; this module is the queries over them, on a
:class:`~gocdbackup.drivers.postgres.server.PostgresServer`'s connections."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC
from itertools import islice
from typing import Any

import psycopg
from psycopg import sql

from gocdbackup.drivers.postgres.sealed import (
    present_columns,
    reseal,
    rows_holding,
    sealed_batches,
)
from gocdbackup.drivers.postgres.server import PostgresServer
from gocdbackup.errors import ConfigError
from gocdbackup.gocdnext.schema import GOOSE_TABLE, STORAGE_SETTING, Table
from gocdbackup.gocdnext.secrets import EncryptedColumn
from gocdbackup.model.artifacts import ObjectKind, ObjectRef
from gocdbackup.model.backup import RunMark
from gocdbackup.model.orphans import RowRef
from gocdbackup.model.secrets import Reseal, SealedBatch, SealedValue, values_of

# two statements: one statement naming goose_db_version fails on a database without it (a
# generic one, or gocdnext's before its first migration) even in a branch never taken, because
# the whole statement is planned before it runs
_HAS_TABLE_SQL = "SELECT to_regclass(%s) IS NOT NULL"
_GOOSE_SQL = sql.SQL("SELECT max(version_id) FROM {} WHERE is_applied").format(
    sql.Identifier(GOOSE_TABLE)
)

_HAS_GOCDNEXT_TABLES_SQL = (
    "SELECT bool_and(to_regclass(t) IS NOT NULL) FROM unnest(%s::text[]) AS names(t)"
)
_GOCDNEXT_TABLES = [t.value for t in Table]

_SLUGS_SQL = 'SELECT slug FROM projects ORDER BY slug COLLATE "C"'
#: gocdnext's newest run (the newest created; the id breaks ties)
NEWEST_RUN_SQL = "SELECT id::text, created_at FROM runs ORDER BY created_at DESC, id DESC LIMIT 1"
_SETTING_SQL = "SELECT value, credentials_enc FROM platform_settings WHERE key = %s"

# every object a row references: gocdnext's three key layouts (see docs/artifacts.md)
_OBJECTS_SQL = """
SELECT 'artifact', storage_key, id::text, status, size_bytes, content_sha256,
       project_id::text, pipeline_id::text, run_id::text
FROM artifacts
UNION ALL
SELECT 'cache', storage_key, id::text, status, size_bytes, content_sha256,
       project_id::text, NULL, NULL
FROM caches
UNION ALL
SELECT 'log_archive', j.logs_archive_uri, j.id::text, 'ready', NULL, NULL,
       p.project_id::text, r.pipeline_id::text, j.run_id::text
FROM job_runs j JOIN runs r ON r.id = j.run_id JOIN pipelines p ON p.id = r.pipeline_id
WHERE j.logs_archive_uri IS NOT NULL
ORDER BY 2
"""

_ROWS_NOW_SQL = """
SELECT storage_key, status FROM artifacts WHERE storage_key = ANY(%(keys)s)
UNION ALL SELECT storage_key, status FROM caches WHERE storage_key = ANY(%(keys)s)
UNION ALL SELECT logs_archive_uri, 'ready' FROM job_runs WHERE logs_archive_uri = ANY(%(keys)s)
"""

# every row referencing an object, for an orphan scan, in byte order of the key. stamped_at is
# the row's latest recorded change, the time a grace window is measured from (a later stamp
# only ever makes a scan more careful):
#  - artifacts: GREATEST(created_at, deleted_at), NULLs ignored. For pending and ready rows
#    that is created_at: gocdnext records no confirmation time, and the confirmation follows
#    creation by the upload's duration only. For deleting rows it is the claim time, so a row
#    gocdnext's sweeper claimed moments ago (and may be working on) stays too recent; a
#    deleted_at earlier than created_at (skewed clocks) never moves the stamp back.
#  - caches: GREATEST(created_at, updated_at). last_accessed_at is a read of the object, not a
#    change of it, so it does not count.
#  - job_runs: logs_archived_at; a NULL there (gocdnext always writes it with the URI) stays
#    None, which a scan treats as too recent: an unknown time is never acted on.
_OBJECT_ROWS_SQL = """
SELECT key, tbl, row_id, status, size_bytes, sha256, stamped_at FROM (
    SELECT storage_key AS key, 'artifacts' AS tbl, id::text AS row_id, status,
           size_bytes, content_sha256 AS sha256,
           GREATEST(created_at, deleted_at) AS stamped_at
    FROM artifacts
    UNION ALL
    SELECT storage_key, 'caches', id::text, status, size_bytes, coalesce(content_sha256, ''),
           GREATEST(created_at, updated_at)
    FROM caches
    UNION ALL
    SELECT logs_archive_uri, 'job_runs', id::text, 'ready', NULL::bigint, '', logs_archived_at
    FROM job_runs WHERE logs_archive_uri IS NOT NULL
) AS r
WHERE key COLLATE "C" > %(after)s
ORDER BY key COLLATE "C", tbl COLLATE "C", row_id COLLATE "C"
"""

_OBJECT_ROWS_ITERSIZE = 2000

# retiring rows whose object is gone, as gocdnext's own code retires them (see
# ports.GocdnextData.retire_rows and gocdnext.schema.OBJECT_COLUMNS)
_RETIRE_SQL = {
    Table.ARTIFACTS: """
UPDATE artifacts a
SET status = 'deleting', deleted_at = now(), expires_at = now(), pinned_at = NULL
FROM unnest(%(ids)s::uuid[], %(keys)s::text[], %(statuses)s::text[]) AS r(id, key, status)
WHERE a.id = r.id AND a.storage_key = r.key AND a.status = r.status
""",
    Table.CACHES: """
DELETE FROM caches c
USING unnest(%(ids)s::uuid[], %(keys)s::text[], %(statuses)s::text[]) AS r(id, key, status)
WHERE c.id = r.id AND c.storage_key = r.key AND c.status = r.status
""",
    Table.JOB_RUNS: """
UPDATE job_runs j SET logs_archive_uri = NULL, logs_archived_at = NULL
FROM unnest(%(ids)s::uuid[], %(keys)s::text[]) AS r(id, key)
WHERE j.id = r.id AND j.logs_archive_uri = r.key
""",
}

_RETIRE_BATCH = 5000

_NOT_GOCDNEXT = (
    "database {db!r} at {where} has no gocdnext tables ({tables}): it is not a gocdnext"
    " database, and scanning a store against it would call every object an orphan"
)


def goose_version(conn: psycopg.Connection[Any]) -> int | None:
    """The latest applied goose migration of the connection's database, read in its current
    transaction; None when it has no ``goose_db_version`` table (not gocdnext's, or never
    migrated) or no applied row.  The ``schema_version`` hook of a
    :class:`~gocdbackup.drivers.postgres.server.PostgresServer` serving gocdnext."""
    (present,) = conn.execute(_HAS_TABLE_SQL, (GOOSE_TABLE,)).fetchone() or (False,)
    if not present:
        return None
    row = conn.execute(_GOOSE_SQL).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _is_gocdnext(conn: psycopg.Connection[Any]) -> bool:
    """Whether the connection's database has gocdnext's object-referencing tables."""
    (present,) = conn.execute(_HAS_GOCDNEXT_TABLES_SQL, (_GOCDNEXT_TABLES,)).fetchone() or (False,)
    return bool(present)


def _retire_params(rows: list[RowRef]) -> dict[Table, dict[str, list[str]]]:
    """The unnest arrays of each table's retire statement, for ``rows``."""
    out: dict[Table, dict[str, list[str]]] = {}
    for row in rows:
        if row.table not in _RETIRE_SQL:
            raise ConfigError(f"cannot retire a row of table {row.table!r} ({row.key})")
        params = out.setdefault(Table(row.table), {"ids": [], "keys": [], "statuses": []})
        params["ids"].append(row.row_id)
        params["keys"].append(row.key)
        params["statuses"].append(row.status)
    return out


class GocdnextTables:
    """The :class:`~gocdbackup.ports.GocdnextData` port: gocdnext's rows in the database
    ``server`` names, on connections of its own."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server

    def __repr__(self) -> str:
        return f"GocdnextTables({self.server.where!r})"

    @property
    def name(self) -> str:
        return self.server.name

    def source_id(self) -> str:
        return self.server.source_id()

    def _require_gocdnext(self, conn: psycopg.Connection[Any]) -> None:
        if not _is_gocdnext(conn):
            raise ConfigError(
                _NOT_GOCDNEXT.format(
                    db=self.name, where=self.server.where, tables=", ".join(_GOCDNEXT_TABLES)
                )
            )

    @contextmanager
    def _in_snapshot(self, snapshot_id: str) -> Iterator[psycopg.Connection[Any] | None]:
        """A connection reading in the exported snapshot ``snapshot_id`` (None: the database
        has no gocdnext tables)."""
        server = self.server
        with server.reading() as conn, server.translating():
            # the transaction's first statement: from here on it reads what the exporter reads
            conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)))
            yield conn if _is_gocdnext(conn) else None

    def referenced_objects(self, snapshot_id: str) -> list[ObjectRef]:
        with self._in_snapshot(snapshot_id) as conn:
            if conn is None:
                return []
            with conn.cursor() as cur:
                cur.execute(_OBJECTS_SQL)
                return [
                    ObjectRef(
                        kind=ObjectKind(kind),
                        key=key,
                        row_id=row_id,
                        status=status,
                        size_bytes=None if size is None else int(size),
                        sha256=sha or "",
                        project_id=project,
                        pipeline_id=pipeline,
                        run_id=run,
                    )
                    for kind, key, row_id, status, size, sha, project, pipeline, run in cur
                ]

    def newest_run(self, snapshot_id: str) -> RunMark | None:
        with self._in_snapshot(snapshot_id) as conn:
            if conn is None:
                return None
            row = conn.execute(NEWEST_RUN_SQL).fetchone()
        return None if row is None else RunMark(id=str(row[0]), created_at=row[1])

    def object_rows(self, start_after: str = "") -> Iterator[RowRef]:
        server = self.server
        # also when the consumer stops early (GeneratorExit), leaving ends the transaction
        with server.reading() as conn, server.translating():
            self._require_gocdnext(conn)
            with conn.cursor(name="gocdbackup_object_rows") as cur:
                cur.itersize = _OBJECT_ROWS_ITERSIZE
                cur.execute(_OBJECT_ROWS_SQL, {"after": start_after})
                for key, table, row_id, status, size, sha, stamped in cur:
                    yield RowRef(
                        key=key,
                        table=table,
                        row_id=row_id,
                        status=status,
                        size_bytes=None if size is None else int(size),
                        sha256=sha or "",
                        stamped_at=None if stamped is None else stamped.astimezone(UTC),
                    )

    def object_rows_now(self, keys: Iterable[str]) -> dict[str, str]:
        wanted = list(keys)
        if not wanted:
            return {}
        with self.server.connect() as conn, self.server.translating():
            if not _is_gocdnext(conn):
                return {}
            rows = conn.execute(_ROWS_NOW_SQL, {"keys": wanted}).fetchall()
        return {str(k): str(s) for k, s in rows}

    def retire_rows(self, rows: Iterable[RowRef]) -> int:
        it = iter(rows)
        batch = list(islice(it, _RETIRE_BATCH))
        if not batch:
            return 0
        changed = 0
        # one transaction: the connection's context commits on success, rolls back on error
        with self.server.connect(autocommit=False) as conn, self.server.translating():
            self._require_gocdnext(conn)
            with conn.cursor() as cur:
                while batch:
                    for table, params in _retire_params(batch).items():
                        cur.execute(_RETIRE_SQL[table], params)
                        changed += max(cur.rowcount, 0)
                    batch = list(islice(it, _RETIRE_BATCH))
        return changed

    def project_slugs(self) -> list[str]:
        with self.server.connect() as conn, self.server.translating():
            self._require_gocdnext(conn)
            return [str(r[0]) for r in conn.execute(_SLUGS_SQL).fetchall()]

    def storage_setting(self) -> tuple[dict[str, Any], bytes | None] | None:
        with self.server.connect() as conn, self.server.translating():
            (present,) = conn.execute(_HAS_TABLE_SQL, ("platform_settings",)).fetchone() or (False,)
            row = conn.execute(_SETTING_SQL, (STORAGE_SETTING,)).fetchone() if present else None
        if row is None:
            return None
        value, creds = row
        setting = value if isinstance(value, dict) else json.loads(value)
        return setting, None if creds is None else bytes(creds)

    def encrypted_columns_present(self, columns: Sequence[EncryptedColumn]) -> list[str]:
        with self.server.connect() as conn, self.server.translating():
            return present_columns(conn, columns)

    def sealed_batches(
        self, columns: Sequence[EncryptedColumn], *, keys: bool = True
    ) -> Iterator[SealedBatch]:
        return sealed_batches(self.server, columns, keys=keys)

    def rows_holding(
        self, column: EncryptedColumn, blobs: Sequence[bytes]
    ) -> dict[bytes, list[str]]:
        return rows_holding(self.server, column, blobs)

    def sealed_values(self, columns: Sequence[EncryptedColumn]) -> Iterator[SealedValue]:
        return values_of(sealed_batches(self.server, columns))

    def reseal(self, changes: Sequence[Reseal]) -> int:
        return reseal(self.server, changes)
