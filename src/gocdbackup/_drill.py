"""Restore drills from Python: a backup restored into a scratch PostgreSQL (an embedded one by
default, nothing to set up) and a scratch store (a temporary directory by default), checked,
and torn down (the facade over ``ops.drill``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

from gocdbackup._facade import GocdBackup
from gocdbackup._wiring import postgres_server, store_of
from gocdbackup.credentials import given_key
from gocdbackup.drivers.local_server import LocalPostgres
from gocdbackup.drivers.postgres import GocdnextTables, PostgresServer
from gocdbackup.drivers.postgres.drill import DrillQueries
from gocdbackup.errors import DrillFailed
from gocdbackup.model.drill import DrillReport
from gocdbackup.model.secrets import SecretsCheck
from gocdbackup.ops import drill, secrets
from gocdbackup.ports import ObjectStore


def _scratch_server(dsn: str | PostgresServer | None, stack: ExitStack) -> PostgresServer:
    """The server ``dsn`` names, or an embedded one that ``stack`` stops."""
    if isinstance(dsn, PostgresServer):
        return dsn
    if dsn is not None:
        return postgres_server(dsn)
    return postgres_server(stack.enter_context(LocalPostgres.start()).dsn())


def _scratch_store(url: str | None, stack: ExitStack) -> ObjectStore:
    if url is not None:
        store = store_of(url)
        assert store is not None
        return store
    directory = tempfile.mkdtemp(prefix="gocdbackup-drill-")
    stack.callback(shutil.rmtree, directory, True)
    store = store_of(Path(directory).as_uri())
    assert store is not None
    return store


def run_drill(
    gb: GocdBackup,
    backup_id: str | None = None,
    *,
    scratch_db: str | PostgresServer | None = None,
    scratch_store: str | None = None,
    sample: int | float = drill.DEFAULT_SAMPLE,
    run_id: str | None = None,
    secret_key: str | None = None,
    secret_key_file: str | None = None,
    raise_on_failure: bool = True,
) -> DrillReport:
    """Drill ``backup_id`` (default: the newest backup) of ``gb``'s repository: verify it,
    restore it into ``scratch_db`` (a server DSN, or a server such as
    :func:`gocdbackup.kube_postgres` of a release in a scratch namespace; default: an embedded
    PostgreSQL started for the drill) and ``sample`` of its objects (a count, or a share from
    0 to 1) into ``scratch_store`` (default: a temporary directory), check it, tear it all
    down.  With the application key, its fingerprint and every sealed value are checked too.
    A drill that fails raises :class:`~gocdbackup.errors.DrillFailed` carrying the report
    (or returns it, with ``raise_on_failure=False``)."""
    backups = gb.list_backups()
    if backup_id is None and not len(backups):
        raise DrillFailed("the repository holds no backup to drill", report=None)
    backup = gb.get_backup(backup_id) if backup_id else max(backups, key=lambda b: b.created_at)
    key = given_key(secret_key, secret_key_file)
    with ExitStack() as stack:
        server = _scratch_server(scratch_db, stack)
        store = _scratch_store(scratch_store, stack)
        target = f"gocdbackup_drill_{os.urandom(4).hex()}"
        check = None
        if key is not None:
            sealed_with = key

            def check(staging: str) -> SecretsCheck:
                data = GocdnextTables(server.database_named(staging))
                return secrets.check_secrets(data, sealed_with, ctx=gb.context())

        report = drill.run_drill(
            gb.repository,
            backup,
            scratch=server,
            target=target,
            questions=lambda name: DrillQueries(server.database_named(name)),
            store=store,
            ctx=gb.context(),
            sample=sample,
            run_id=run_id,
            secret_key=key,
            check_secrets=check,
        )
    if raise_on_failure and not report.ok:
        raise DrillFailed(report.verdict(), report=report)
    return report
