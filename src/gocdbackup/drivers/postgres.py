"""The Database port on a real PostgreSQL server: psycopg for SQL, pg_dump/pg_restore for data.

Passwords never reach a command line or a message: the tools get the connection string without
the password and the password through ``PGPASSWORD`` in their environment only.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC
from itertools import islice
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from gocdbackup.context import OpContext
from gocdbackup.drivers.pgtools import (
    PgTool,
    clip,
    find_tool,
    major_of,
    one_line,
    refusal_sqlstate,
    run_tool,
    tool_messages,
)
from gocdbackup.errors import (
    AuthenticationFailed,
    ConfigError,
    DatabaseNotFound,
    DatabaseUnreachable,
    GocdBackupError,
    PermissionDenied,
    PostgresError,
    ToolFailed,
)
from gocdbackup.model.artifacts import ObjectKind, ObjectRef
from gocdbackup.model.backup import ConsistencyPoint, DatabaseInfo, TableRows
from gocdbackup.model.orphans import RowRef

log = logging.getLogger("gocdbackup.drivers.postgres")

DEFAULT_RESTORE_SETTINGS = {"maintenance_work_mem": "256MB", "synchronous_commit": "off"}
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

# two statements: one statement naming goose_db_version fails on a database without it (a
# generic one, or gocdnext's before its first migration) even in a branch never taken, because
# the whole statement is planned before it runs
_HAS_GOOSE_SQL = "SELECT to_regclass('goose_db_version') IS NOT NULL"
_GOOSE_SQL = "SELECT max(version_id) FROM goose_db_version WHERE is_applied"


_HAS_GOCDNEXT_TABLES = """
SELECT to_regclass('artifacts') IS NOT NULL AND to_regclass('caches') IS NOT NULL
       AND to_regclass('job_runs') IS NOT NULL
"""

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

# retiring rows whose object is gone, as gocdnext's own code retires them (see ports.Database)
_RETIRE_SQL = {
    "artifacts": """
UPDATE artifacts a
SET status = 'deleting', deleted_at = now(), expires_at = now(), pinned_at = NULL
FROM unnest(%(ids)s::uuid[], %(keys)s::text[], %(statuses)s::text[]) AS r(id, key, status)
WHERE a.id = r.id AND a.storage_key = r.key AND a.status = r.status
""",
    "caches": """
DELETE FROM caches c
USING unnest(%(ids)s::uuid[], %(keys)s::text[], %(statuses)s::text[]) AS r(id, key, status)
WHERE c.id = r.id AND c.storage_key = r.key AND c.status = r.status
""",
    "job_runs": """
UPDATE job_runs j SET logs_archive_uri = NULL, logs_archived_at = NULL
FROM unnest(%(ids)s::uuid[], %(keys)s::text[]) AS r(id, key)
WHERE j.id = r.id AND j.logs_archive_uri = r.key
""",
}

_RETIRE_BATCH = 5000

_NOT_GOCDNEXT = (
    "database {db!r} at {where} has no gocdnext tables (artifacts, caches, job_runs): it is not"
    " a gocdnext database, and scanning a store against it would call every object an orphan"
)


def describe_target(params: dict[str, Any]) -> str:
    """``host:port/db`` without user or password, for messages."""
    host = params.get("host") or os.environ.get("PGHOST") or "local socket"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    return f"{host}:{port}/{params.get('dbname') or '?'}"


_DETAIL_CHARS = 300

# SQLSTATEs (never message texts, which follow the server's lc_messages) decide the error class
_UNREACHABLE_SQLSTATES = frozenset(
    {"57P01", "57P02", "57P03", "57P04", "57P05"}  # shut down, starting, dropped, idle timeout
)


def _sqlstate_class(
    sqlstate: str | None, *, connecting: bool
) -> type[PostgresError] | type[DatabaseNotFound]:
    if sqlstate is not None:
        if sqlstate.startswith("28"):  # invalid authorization specification
            return AuthenticationFailed
        if sqlstate == "3D000":  # invalid catalog name
            return DatabaseNotFound
        if sqlstate == "42501":  # insufficient privilege
            return PermissionDenied
        if sqlstate.startswith("08") or sqlstate in _UNREACHABLE_SQLSTATES:
            return DatabaseUnreachable
    return DatabaseUnreachable if connecting else PostgresError


def _server_text(exc: psycopg.Error) -> str:
    """The server's report from its fields: primary message, detail and hint, one line; never
    the statement excerpt with its caret that psycopg's ``str()`` ends with."""
    diag = exc.diag
    primary = diag.message_primary or next(
        (line for line in str(exc).splitlines() if line.strip()), type(exc).__name__
    )
    parts = [one_line(primary)]
    for label, text in (("detail", diag.message_detail), ("hint", diag.message_hint)):
        if text:
            parts.append(f"{label}: {clip(one_line(text), _DETAIL_CHARS)}")
    return "; ".join(parts)


def _client_text(exc: psycopg.Error) -> str:
    """psycopg's (libpq's) text for an error no server reported, as one line."""
    text = one_line(str(exc)) or type(exc).__name__
    # psycopg's own prefix (not libpq's, not translated): libpq's text says it better
    for prefix in ("connection failed: ", "connection is bad: "):
        text = text.removeprefix(prefix)
    return text


def translate(
    exc: psycopg.Error,
    params: dict[str, Any],
    *,
    connecting: bool = False,
    sqlstate: str | None = None,
) -> GocdBackupError:
    """A psycopg error as a gocdbackup error, classified by SQLSTATE alone.

    ``connecting``: ``exc`` is the failure of a connection attempt. ``sqlstate``: the one the
    server refused that attempt with, when ``exc`` lacks it (psycopg reports connection
    failures without one). The message is one line and never carries a password."""
    where = describe_target(params)
    reported = exc.sqlstate or sqlstate
    code = reported
    if connecting and code is None and _needs_password(exc):
        code = "28000"  # the server asked for a password and the client had none to give
    cls = _sqlstate_class(code, connecting=connecting)
    if exc.sqlstate is not None:
        reason = f"{_server_text(exc)} (SQLSTATE {exc.sqlstate})"
    else:
        reason = _client_text(exc) + (f" (SQLSTATE {reported})" if reported else "")
    if cls is AuthenticationFailed and connecting:
        message = f"PostgreSQL at {where} rejected the credentials: {reason}"
    elif cls is DatabaseNotFound and connecting:
        message = f"database {params.get('dbname')!r} does not exist at {where}: {reason}"
    elif cls is DatabaseUnreachable:
        how = "cannot connect to" if connecting else "lost the connection to"
        message = f"{how} PostgreSQL at {where}: {reason}"
    else:
        message = f"PostgreSQL at {where}: {reason}"
    err = cls(message)
    err.sqlstate = reported
    return err


def _needs_password(exc: psycopg.Error) -> bool:
    """Whether the failed attempt was asked for a password it did not have (libpq's flag)."""
    return exc.pgconn is not None and bool(exc.pgconn.needs_password)


def _connect_timeout(params: dict[str, Any]) -> float:
    try:
        return float(params.get("connect_timeout") or 0) or 10.0
    except ValueError:
        return 10.0


class PgSnapshot:
    def __init__(
        self,
        db: PostgresDatabase,
        conn: psycopg.Connection[Any],
        snapshot_id: str,
        dump_tool: PgTool,
    ) -> None:
        self._db = db
        self._conn = conn
        self._snapshot_id = snapshot_id
        self._dump_tool = dump_tool

    @property
    def snapshot_id(self) -> str:
        return self._snapshot_id

    def _one(self, query: str) -> tuple[Any, ...]:
        with self._db.translating(), self._conn.cursor() as cur:
            cur.execute(query)
            row = cur.fetchone()
        assert row is not None
        return tuple(row)

    def point(self) -> ConsistencyPoint:
        at, lsn, version, version_num, timeline = self._one(
            "SELECT now(),"
            " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text"
            "      ELSE pg_current_wal_lsn()::text END,"
            " current_setting('server_version'), current_setting('server_version_num')::int,"
            " CASE WHEN has_function_privilege('pg_control_checkpoint()', 'execute')"
            "      THEN (SELECT timeline_id FROM pg_control_checkpoint()) ELSE 0 END"
        )
        goose = goose_version(self._conn, self._db)
        return ConsistencyPoint(
            snapshot_at=at.astimezone(UTC),
            snapshot_id=self._snapshot_id,
            wal_lsn=str(lsn or ""),
            timeline=int(timeline or 0),
            server_version=str(version).split()[0],
            server_version_num=int(version_num),
            goose_version=goose,
        )

    def database(self) -> DatabaseInfo:
        name, owner, encoding, size, data = self._one(
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
        return DatabaseInfo(
            name=name,
            owner=owner,
            encoding=encoding,
            size_bytes=int(size),
            data_bytes=int(data),
            pg_dump_version=self._dump_tool.version,
        )

    def count_rows(self) -> tuple[TableRows, ...]:
        return count_tables(self._conn, self._db)

    def referenced_objects(self) -> list[ObjectRef]:
        (present,) = self._one(_HAS_GOCDNEXT_TABLES)
        if not present:
            return []
        with self._db.translating(), self._conn.cursor() as cur:
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

    @contextmanager
    def dump(self, ctx: OpContext) -> Iterator[DumpReader]:
        args = [
            self._dump_tool.path,
            "--format=custom",
            "--compress=0",
            f"--snapshot={self._snapshot_id}",
            f"--dbname={self._db.tool_conninfo()}",
        ]
        with run_tool(
            args, env=self._db.tool_env(), stdout=subprocess.PIPE, tool="pg_dump"
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


class DumpReader:
    """pg_dump's stdout, checking that it starts like a custom-format archive."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.bytes_read = 0
        self._head = b""

    @property
    def valid(self) -> bool:
        return self._head[: len(_MAGIC)] == _MAGIC

    def readinto(self, buf: memoryview) -> int:
        n: int = self._raw.readinto(buf)
        if len(self._head) < len(_MAGIC) and n:
            self._head += bytes(buf[: len(_MAGIC) - len(self._head)])
        self.bytes_read += n
        return n

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._raw.read(n)
        if len(self._head) < len(_MAGIC):
            self._head += data[: len(_MAGIC) - len(self._head)]
        self.bytes_read += len(data)
        return data


def only_transaction_timeout_errors(stderr: str) -> bool:
    """True if every error pg_restore reported is the pre-17 server's refusal of
    ``SET transaction_timeout`` (and there was at least one)."""
    errors = [line for line in stderr.splitlines() if line.startswith("pg_restore: error:")]
    needle = 'unrecognized configuration parameter "transaction_timeout"'
    return bool(errors) and all(needle in line for line in errors)


def goose_version(
    conn: psycopg.Connection[Any], db: PostgresDatabase, dbname: str | None = None
) -> int | None:
    """The latest applied goose migration of the connection's database; None when it has no
    ``goose_db_version`` table (not gocdnext's, or never migrated) or no applied row."""
    with db.translating(dbname):
        (present,) = conn.execute(_HAS_GOOSE_SQL).fetchone() or (False,)
        if not present:
            return None
        row = conn.execute(_GOOSE_SQL).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def count_tables(
    conn: psycopg.Connection[Any], db: PostgresDatabase, dbname: str | None = None
) -> tuple[TableRows, ...]:
    out = []
    with db.translating(dbname), conn.cursor() as cur:
        cur.execute(_TABLES_SQL)
        tables = cur.fetchall()
        for schema, name in tables:
            cur.execute(
                sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(name)
                )
            )
            row = cur.fetchone()
            assert row is not None
            out.append(TableRows(name=f"{schema}.{name}", rows=int(row[0])))
    return tuple(out)


def _is_gocdnext(conn: psycopg.Connection[Any]) -> bool:
    """Whether the connection's database has gocdnext's object-referencing tables."""
    (present,) = conn.execute(_HAS_GOCDNEXT_TABLES).fetchone() or (False,)
    return bool(present)


def _retire_params(rows: list[RowRef]) -> dict[str, dict[str, list[str]]]:
    """The unnest arrays of each table's retire statement, for ``rows``."""
    out: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        if row.table not in _RETIRE_SQL:
            raise ConfigError(f"cannot retire a row of table {row.table!r} ({row.key})")
        params = out.setdefault(row.table, {"ids": [], "keys": [], "statuses": []})
        params["ids"].append(row.row_id)
        params["keys"].append(row.key)
        params["statuses"].append(row.status)
    return out


class PostgresDatabase:
    """A PostgreSQL database named by a libpq connection string (``PG*`` env honoured)."""

    def __init__(
        self,
        dsn: str = "",
        *,
        bindir: str | None = None,
        restore_settings: dict[str, str] | None = None,
        connect_timeout: int = 10,
    ) -> None:
        try:
            self._params = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            raise ConfigError("the database connection string is malformed") from exc
        self._params.setdefault("connect_timeout", connect_timeout)
        if not self._params.get("dbname"):
            self._params["dbname"] = os.environ.get("PGDATABASE") or os.environ.get(
                "PGUSER", "postgres"
            )
        self._bindir = bindir
        #: session settings for pg_restore's connection (PGOPTIONS): bigger sort memory
        #: for index builds, no waiting on WAL flushes while loading a fresh database
        self._settings = (
            dict(DEFAULT_RESTORE_SETTINGS) if restore_settings is None else restore_settings
        )

    def __repr__(self) -> str:
        return f"PostgresDatabase({describe_target(self._params)!r})"

    @property
    def name(self) -> str:
        return str(self._params["dbname"])

    # -- connections -------------------------------------------------------------------------

    @contextmanager
    def translating(self, dbname: str | None = None) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            params = dict(self._params, dbname=dbname or self.name)
            raise translate(exc, params) from exc

    def connect(
        self, dbname: str | None = None, *, autocommit: bool = True
    ) -> psycopg.Connection[Any]:
        params = {k: str(v) for k, v in self._params.items() if v is not None}
        if dbname is not None:
            params["dbname"] = dbname
        conninfo = make_conninfo(**params)
        try:
            return psycopg.connect(conninfo, autocommit=autocommit)
        except psycopg.Error as exc:
            refused = None
            if not (
                exc.sqlstate
                or isinstance(exc, psycopg.errors.ConnectionTimeout)
                or _needs_password(exc)
            ):
                # psycopg gives no SQLSTATE for a refused connection: ask the server again
                refused = refusal_sqlstate(conninfo, _connect_timeout(params))
            raise translate(exc, params, connecting=True, sqlstate=refused) from exc

    def _admin_db(self, avoid: str) -> str:
        return "postgres" if avoid != "postgres" else "template1"

    def tool_conninfo(self, dbname: str | None = None) -> str:
        params = {k: v for k, v in self._params.items() if k != "password"}
        if dbname is not None:
            params["dbname"] = dbname
        return make_conninfo(**{k: str(v) for k, v in params.items()})

    def tool_env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self._params.get("password"):
            env["PGPASSWORD"] = str(self._params["password"])
        return env

    def server_major(self) -> int:
        with self.connect(self._admin_db(self.name)) as conn:
            return int(conn.info.server_version // 10000)

    # -- backup ------------------------------------------------------------------------------

    @contextmanager
    def snapshot(self, ctx: OpContext) -> Iterator[PgSnapshot]:
        conn = self.connect(autocommit=False)
        try:
            server_major = conn.info.server_version // 10000
            tool = find_tool(
                "pg_dump", server_major, prefer_major=server_major, bindir=self._bindir
            )
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with self.translating():
                row = conn.execute("SELECT pg_export_snapshot()").fetchone()
            assert row is not None
            log.debug("exported snapshot %s using %s %s", row[0], tool.path, tool.version)
            yield PgSnapshot(self, conn, str(row[0]), tool)
        finally:
            self._release(conn)

    @staticmethod
    def _release(conn: psycopg.Connection[Any]) -> None:
        """End the snapshot: cancel a query still running in it (row counting abandoned by a
        failed or interrupted backup), roll back, close."""
        try:
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.ACTIVE:
                conn.cancel_safe(timeout=10)
            conn.rollback()
        except psycopg.Error as exc:
            log.debug("ending the snapshot: %s", exc)
        finally:
            conn.close()

    # -- restore -----------------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        with self.connect(self._admin_db(name)) as conn, self.translating():
            return (
                conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                is not None
            )

    def role_exists(self, role: str) -> bool:
        with self.connect(self._admin_db(self.name)) as conn, self.translating():
            return (
                conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
                is not None
            )

    def _restore_tool(self, min_tool_version: str, server_major: int | None = None) -> PgTool:
        return find_tool(
            "pg_restore", major_of(min_tool_version), prefer_major=server_major, bindir=self._bindir
        )

    def create(self, name: str, *, owner: str | None, encoding: str) -> None:
        query = sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {}").format(
            sql.Identifier(name), sql.Literal(encoding)
        )
        if owner:
            query = query + sql.SQL(" OWNER {}").format(sql.Identifier(owner))
        with self.connect(self._admin_db(name)) as conn, self.translating(name):
            conn.execute(query)

    def load(
        self,
        chunks: Iterable[bytes],
        name: str,
        *,
        role: str | None,
        min_tool_version: str,
        ctx: OpContext,
    ) -> None:
        server_major = self.server_major()
        tool = self._restore_tool(min_tool_version, server_major)
        # pg_restore 17+ starts every session with "SET transaction_timeout", which servers
        # before 17 reject; that one error is harmless, so it is tolerated (and only it)
        tolerate = tool.major >= 17 > server_major
        args = [tool.path, "--no-owner", "--no-acl", f"--dbname={self.tool_conninfo(name)}"]
        if not tolerate:
            args.append("--exit-on-error")
        if role:
            args.append(f"--role={role}")
        env = self.tool_env()
        env["PGOPTIONS"] = " ".join(
            [env.get("PGOPTIONS", ""), *(f"-c {k}={v}" for k, v in self._settings.items())]
        ).strip()
        with run_tool(
            args, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, tool="pg_restore"
        ) as running:
            pipe = running.proc.stdin
            assert pipe is not None
            try:
                for data in chunks:  # an error here leaves the context: pg_restore is stopped
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

    def storage_setting(self) -> tuple[dict[str, Any], bytes | None] | None:
        with self.connect() as conn, self.translating():
            (present,) = conn.execute(
                "SELECT to_regclass('platform_settings') IS NOT NULL"
            ).fetchone() or (False,)
            row = (
                conn.execute(
                    "SELECT value, credentials_enc FROM platform_settings"
                    " WHERE key = 'artifacts.storage'"
                ).fetchone()
                if present
                else None
            )
        if row is None:
            return None
        value, creds = row
        setting = value if isinstance(value, dict) else json.loads(value)
        return setting, None if creds is None else bytes(creds)

    def object_rows_now(self, keys: Iterable[str]) -> dict[str, str]:
        wanted = list(keys)
        if not wanted:
            return {}
        with self.connect() as conn, self.translating():
            if not _is_gocdnext(conn):
                return {}
            rows = conn.execute(_ROWS_NOW_SQL, {"keys": wanted}).fetchall()
        return {str(k): str(s) for k, s in rows}

    # -- orphan scans ------------------------------------------------------------------------

    def _require_gocdnext(self, conn: psycopg.Connection[Any]) -> None:
        if not _is_gocdnext(conn):
            raise ConfigError(
                _NOT_GOCDNEXT.format(db=self.name, where=describe_target(self._params))
            )

    def source_id(self) -> str:
        with self.connect() as conn, self.translating():
            info = conn.info
            host = info.host or "local socket"
            where = f"postgresql://{host}:{info.port}/{info.dbname}"
            system = None
            try:
                row = conn.execute(
                    "SELECT CASE WHEN has_function_privilege('pg_control_system()', 'execute')"
                    " THEN (SELECT system_identifier::text FROM pg_control_system()) END"
                ).fetchone()
                system = None if row is None else row[0]
            except psycopg.Error as exc:  # not permitted here: the address alone names it
                log.debug("no system identifier: %s", exc)
        return where if system is None else f"{where} (system {system})"

    def object_rows(self, start_after: str = "") -> Iterator[RowRef]:
        conn = self.connect(autocommit=False)
        try:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with self.translating():
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
        finally:  # also when the consumer stops early (GeneratorExit): end the transaction
            self._release(conn)

    def retire_rows(self, rows: Iterable[RowRef]) -> int:
        it = iter(rows)
        batch = list(islice(it, _RETIRE_BATCH))
        if not batch:
            return 0
        changed = 0
        # one transaction: the connection's context commits on success, rolls back on error
        with self.connect(autocommit=False) as conn, self.translating():
            self._require_gocdnext(conn)
            with conn.cursor() as cur:
                while batch:
                    for table, params in _retire_params(batch).items():
                        cur.execute(_RETIRE_SQL[table], params)
                        changed += max(cur.rowcount, 0)
                    batch = list(islice(it, _RETIRE_BATCH))
        return changed

    def inspect(self, name: str) -> tuple[int | None, tuple[TableRows, ...]]:
        with self.connect(name, autocommit=False) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            goose = goose_version(conn, self, name)
            tables = count_tables(conn, self, name)
            conn.rollback()
        return goose, tables

    def _terminate(self, conn: psycopg.Connection[Any], name: str) -> None:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )

    def swap(self, staging: str, target: str) -> None:
        with self.connect(self._admin_db(target)) as conn, self.translating(target):
            self._terminate(conn, target)
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target))
            )
            conn.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(staging), sql.Identifier(target)
                )
            )

    def drop(self, name: str) -> None:
        with self.connect(self._admin_db(name)) as conn, self.translating(name):
            self._terminate(conn, name)
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
