"""The :class:`~gocdbackup.ports.Postgres` port on a real server: psycopg for SQL, pg_dump and
pg_restore for data.  Generic PostgreSQL only: gocdnext's SQL lives in
:mod:`gocdbackup.drivers.postgres.gocdnext`, and the schema's migration version reaches a
snapshot's consistency point and :meth:`PostgresServer.inspect` through the ``schema_version``
hook the server is made with.

Passwords never reach a command line or a message: the tools get the connection string without
the password and the password through ``PGPASSWORD`` in their environment only.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from gocdbackup.context import OpContext
from gocdbackup.drivers.postgres.errors import (
    connect_timeout,
    describe_target,
    needs_password,
    translate,
)
from gocdbackup.drivers.postgres.restore_tool import pg_restore
from gocdbackup.drivers.postgres.snapshot import PgSnapshot, count_tables
from gocdbackup.drivers.postgres.tools import (
    PgTool,
    Running,
    find_tool,
    refusal_sqlstate,
    run_tool,
    tool_messages,
)
from gocdbackup.errors import ConfigError, IntegrityError
from gocdbackup.model.backup import TableRows

log = logging.getLogger("gocdbackup.drivers.postgres")

DEFAULT_RESTORE_SETTINGS = {"maintenance_work_mem": "256MB", "synchronous_commit": "off"}

#: reads the schema's migration version on a connection to the database in question (in its
#: current transaction: a snapshot's, or an inspection's); None where there is none.  Called
#: inside :meth:`PostgresServer.translating`, so it may let psycopg errors out.
SchemaVersion = Callable[[psycopg.Connection[Any]], int | None]


def dsn_without_password(dsn: str) -> str:
    """``dsn`` as a libpq key/value connection string without its password, safe to show."""
    params = {k: v for k, v in conninfo_to_dict(dsn).items() if k != "password"}
    return make_conninfo("", **params)


class PostgresServer:
    """A PostgreSQL database named by a libpq connection string (``PG*`` env honoured), and the
    server it lives on.

    ``schema_version`` reads the schema's migration version for snapshots and inspections
    (gocdnext's goose version: :func:`gocdbackup.drivers.postgres.gocdnext.goose_version`);
    without it, none is recorded."""

    def __init__(
        self,
        dsn: str = "",
        *,
        bindir: str | None = None,
        restore_settings: dict[str, str] | None = None,
        connect_timeout: int = 10,
        schema_version: SchemaVersion | None = None,
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
        self._schema_version = schema_version
        self._major: int | None = None

    #: pg_restore runs on this machine and can read a temporary file (for ``-j``)
    tools_read_local_files = True

    def __repr__(self) -> str:
        return f"PostgresServer({self.where!r})"

    @property
    def restore_settings(self) -> dict[str, str]:
        """Session settings for pg_restore's connections (``PGOPTIONS``)."""
        return self._settings

    def database_named(self, name: str) -> PostgresServer:
        """The same server and settings, for the database ``name`` (e.g. a staging copy)."""
        other = copy.copy(self)
        other._params = {**self._params, "dbname": name}
        return other

    @property
    def name(self) -> str:
        return str(self._params["dbname"])

    @property
    def where(self) -> str:
        """``host:port/db``, for messages (no user, no password)."""
        return describe_target(self._params)

    # -- connections -------------------------------------------------------------------------

    @contextmanager
    def translating(self, dbname: str | None = None) -> Iterator[None]:
        """psycopg errors raised inside, as gocdbackup errors (about database ``dbname``)."""
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
                or needs_password(exc)
            ):
                # psycopg gives no SQLSTATE for a refused connection: ask the server again
                refused = refusal_sqlstate(conninfo, connect_timeout(params))
            raise translate(exc, params, connecting=True, sqlstate=refused) from exc

    @contextmanager
    def reading(self) -> Iterator[psycopg.Connection[Any]]:
        """A new connection in a read-only ``REPEATABLE READ`` transaction (begun by its first
        statement), ended by :meth:`release` when the context is left, however it is left."""
        conn = self.connect(autocommit=False)
        try:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            yield conn
        finally:
            self.release(conn)

    @staticmethod
    def release(conn: psycopg.Connection[Any]) -> None:
        """End a transaction that only read: cancel a query still running in it (row counting
        abandoned by a failed or interrupted backup), roll back, close."""
        try:
            if conn.info.transaction_status == psycopg.pq.TransactionStatus.ACTIVE:
                conn.cancel_safe(timeout=10)
            conn.rollback()
        except psycopg.Error as exc:
            log.debug("ending the transaction: %s", exc)
        finally:
            conn.close()

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
        """The server's major version (asked once: a restore by tables needs it per table)."""
        if self._major is None:
            with self.connect(self._admin_db(self.name)) as conn:
                self._major = int(conn.info.server_version // 10000)
        return self._major

    def schema_version_on(
        self, conn: psycopg.Connection[Any], dbname: str | None = None
    ) -> int | None:
        """The ``schema_version`` hook's answer on ``conn`` (None without a hook)."""
        if self._schema_version is None:
            return None
        with self.translating(dbname):
            return self._schema_version(conn)

    def source_id(self) -> str:
        """``postgresql://host:port/db``, and the server's system identifier where the role may
        read it (two servers at the same address are told apart by it)."""
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

    # -- backup ------------------------------------------------------------------------------

    @contextmanager
    def snapshot(self, ctx: OpContext) -> Iterator[PgSnapshot]:
        """Export a snapshot of :attr:`name` on a connection of its own, held until the context
        is left (leaving also cancels a query still running in it)."""
        with self.reading() as conn:
            server_major = conn.info.server_version // 10000
            tool = self.find_tool("pg_dump", server_major, prefer_major=server_major)
            with self.translating():
                row = conn.execute("SELECT pg_export_snapshot()").fetchone()
            assert row is not None
            log.debug("exported snapshot %s using %s %s", row[0], tool.path, tool.version)
            yield PgSnapshot(self, conn, str(row[0]), tool)

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

    def check_toc(self, head: bytes, major: int) -> None:
        """``pg_restore --list`` over an archive's first bytes: its table of contents must read
        (it comes before the data, so a dump whose TOC is damaged is refused before its
        backup is committed)."""
        tool = self.find_tool("pg_restore", major, prefer_major=major)
        args = [tool.path, "--list", "--file=/dev/null"]
        with self.run_tool(
            args,
            env=self.tool_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            tool="pg_restore",
        ) as running:
            pipe = running.proc.stdin
            assert pipe is not None
            with contextlib.suppress(BrokenPipeError):
                pipe.write(head)
                pipe.close()
            code = running.proc.wait()
            if code != 0:
                tail = running.stderr_tail()
                raise IntegrityError(
                    "pg_dump's archive has an unreadable table of contents "
                    f"({'; '.join(tool_messages('pg_restore', tail)) or tail.strip()}); "
                    "nothing was committed"
                )

    # -- the tools (where pg_dump and pg_restore run: here; see drivers.kube for a pod) -----

    def find_tool(self, name: str, min_major: int, *, prefer_major: int | None) -> PgTool:
        """``name`` of PostgreSQL ``min_major`` or newer (``prefer_major`` if there)."""
        return find_tool(name, min_major, prefer_major=prefer_major, bindir=self._bindir)

    def run_tool(
        self,
        args: list[str],
        *,
        env: dict[str, str],
        stdout: int | None,
        tool: str,
        stdin: int | None = subprocess.DEVNULL,
    ) -> AbstractContextManager[Running]:
        """Start ``args`` (a tool from :meth:`find_tool`); stopped and reaped on leaving."""
        return run_tool(args, env=env, stdout=stdout, tool=tool, stdin=stdin)

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
        pg_restore(self, chunks, name, role=role, min_tool_version=min_tool_version)

    def restore_part(
        self,
        parts: Iterable[bytes],
        name: str,
        *,
        role: str | None,
        min_tool_version: str,
        section: str,
        objects: tuple[str, Sequence[str]] | None = None,
        jobs: int = 1,
    ) -> None:
        extra = [f"--section={section}"]
        if objects is not None:
            schema, names = objects
            extra += [f"--schema={schema}", *(f"--table={n}" for n in names)]
        pg_restore(
            self, parts, name, role=role, min_tool_version=min_tool_version, extra=extra, jobs=jobs
        )

    def count_rows(self, name: str, schema: str, table: str) -> int:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        with self.connect(name) as conn, self.translating(name):
            row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])

    def empty_table(self, name: str, schema: str, table: str) -> None:
        query = sql.SQL("TRUNCATE {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        with self.connect(name) as conn, self.translating(name):
            conn.execute(query)

    def inspect(
        self, name: str, counted: Mapping[str, int] | None = None
    ) -> tuple[int | None, tuple[TableRows, ...]]:
        with self.connect(name, autocommit=False) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            version = self.schema_version_on(conn, name)
            tables = count_tables(conn, self, name, counted=counted or {})
            conn.rollback()
        return version, tables

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
