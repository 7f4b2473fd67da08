"""restore_backup: stream the verified dump into a staging database, check it, and only then
put it in place of the target."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from gocdbackup.context import OpContext
from gocdbackup.errors import (
    ConfigError,
    ConfirmationMismatch,
    IntegrityError,
    KeyMismatch,
    PreconditionFailed,
    RestoreMismatch,
    TargetExists,
)
from gocdbackup.model.artifacts import ArtifactRestore
from gocdbackup.model.backup import BackupSet
from gocdbackup.model.restore import RestoreReport, diff_tables
from gocdbackup.model.secrets import SecretsCheck
from gocdbackup.ops._components import checked_stream, missing_chunks
from gocdbackup.ops.artifact_index import load_index
from gocdbackup.ops.artifact_restore import restore_artifacts
from gocdbackup.ops.artifacts import DEFAULT_WORKERS
from gocdbackup.ops.backup import DUMP_KIND
from gocdbackup.ops.table_restore import load_by_tables
from gocdbackup.ops.version_restore import restore_from_versions
from gocdbackup.ports import ObjectStore, Postgres
from gocdbackup.ports_bucket import VersionedBucket
from gocdbackup.repository import Repository

log = logging.getLogger("gocdbackup.ops.restore")

_MAX_IDENT = 63


def staging_name(target: str, suffix: str) -> str:
    """A database name next to ``target`` that fits PostgreSQL's 63-byte identifiers."""
    tail = f"__restore_{suffix}"
    head = target.encode()[: _MAX_IDENT - len(tail)].decode(errors="ignore")
    return head + tail


def restore_backup(
    repo: Repository,
    db: Postgres,
    backup_id: str,
    *,
    confirm: str,
    ctx: OpContext,
    target: str | None = None,
    replace: bool = False,
    artifacts: ObjectStore | None = None,
    transfers: int = DEFAULT_WORKERS,
    check_secrets: Callable[[str], SecretsCheck] | None = None,
    jobs: int | None = None,
    versions: VersionedBucket | None = None,
) -> RestoreReport:
    """Restore ``backup_id`` into database ``target`` (default: the one ``db`` names), under a
    shared repository lock (retention and garbage collection wait).  See :func:`_restore`.

    ``jobs`` (default: the number of cores) tables load at a time, and as many indexes and
    constraints build at a time, when the backup recorded where each table's rows lie (backups
    taken before that was recorded have no layout); with ``jobs=1``, or without a layout, the
    dump streams into one pg_restore.

    ``check_secrets`` (given the application key) checks the staging database's sealed values
    before the swap: if none opens (a wrong key), the target is not touched.

    With ``artifacts``, the objects of the backup's artefact index are written back into that
    store first (objects already there with the right content are skipped), so that no restored
    row references an object that is not there; with ``versions`` (the same bucket, versioned),
    from the bucket's own versions where it keeps the version the backup recorded."""
    if jobs is not None and jobs < 1:
        raise ConfigError(f"jobs must be at least 1 (got {jobs}); nothing was changed")
    if confirm != backup_id:
        raise ConfirmationMismatch(
            f"restoring needs confirm={backup_id!r} (got {confirm!r}); nothing was changed"
        )
    with repo.lock("shared", "restore", ctx.clock):
        return _restore(
            repo,
            db,
            backup_id,
            ctx=ctx,
            target=target,
            replace=replace,
            artifacts=artifacts,
            transfers=transfers,
            check_secrets=check_secrets,
            jobs=default_jobs() if jobs is None else jobs,
            versions=versions,
        )


def default_jobs() -> int:
    """How many tables a restore loads at a time unless told: the number of cores."""
    return max(os.cpu_count() or 1, 1)


def _restore(
    repo: Repository,
    db: Postgres,
    backup_id: str,
    *,
    ctx: OpContext,
    target: str | None,
    replace: bool,
    artifacts: ObjectStore | None,
    transfers: int,
    check_secrets: Callable[[str], SecretsCheck] | None = None,
    jobs: int = 1,
    versions: VersionedBucket | None = None,
) -> RestoreReport:
    """Order of work, so that a bad backup or a failed restore never costs the target anything:

    1. An existing target needs ``replace=True``; every chunk the backup needs must be in the
       repository.
    2. The dump is loaded into a new staging database, every chunk authenticated and checked
       against its id on the way: table by table, ``jobs`` at a time, between a schema phase
       and an index phase (:mod:`gocdbackup.ops.table_restore`), or as one stream into one
       ``pg_restore``, the whole stream's length and SHA-256 checked at its end.
    3. The staging database's goose version and every table's row count (counted as each
       table finished loading, where it was loaded on its own) must equal the manifest's.
    4. Only then are the target's sessions ended, the target dropped and the staging database
       renamed to the target.  On any failure before that, the staging database is dropped and
       the target is untouched.
    """
    backup = repo.read_manifest(backup_id).backup
    if backup.method == "physical":
        raise PreconditionFailed(
            f"backup {backup_id} is a physical base backup of a whole server: lay it down into "
            "a new data directory (restore_physical / 'restore ID --pgdata DIR'), or recover it "
            "into a database through a throwaway one (restore_physical(db=DSN) / 'restore ID "
            "--db DSN --target-time T'); nothing was changed"
        )
    target = target or db.name
    exists = db.exists(target)
    if exists and not replace:
        raise TargetExists(f"database {target!r} already exists; pass replace=True to overwrite it")
    component = backup.component(DUMP_KIND)
    missing = missing_chunks(component.chunks, repo.blob_sizes())
    if missing:
        raise IntegrityError(
            f"backup {backup_id} is damaged: {len(missing)} chunk(s) missing; nothing was changed",
            problems=[f"missing blob {m}" for m in missing],
        )
    objects = (
        _restore_objects(repo, backup, artifacts, ctx, transfers, versions=versions)
        if artifacts is not None
        else None
    )
    started = ctx.now()
    info = backup.database
    owner = info.owner if db.role_exists(info.owner) else None
    staging = staging_name(target, os.urandom(3).hex())
    db.create(staging, owner=owner, encoding=info.encoding)
    try:
        loaded = None
        if component.layout is not None and jobs > 1:
            loaded = load_by_tables(
                repo,
                db,
                component,
                staging,
                role=owner,
                min_tool_version=info.pg_dump_version,
                jobs=jobs,
                ctx=ctx,
            )
        if loaded is None:
            db.load(
                checked_stream(repo, component, ctx, phase="restore"),
                staging,
                role=owner,
                min_tool_version=info.pg_dump_version,
                ctx=ctx,
            )
        restore_seconds = (ctx.now() - started).total_seconds()
        goose, tables = db.inspect(staging, None if loaded is None else loaded.counted)
        problems = [
            str(d) for d in diff_tables(info.table_rows(), {t.name: t.rows for t in tables})
        ]
        if goose != backup.point.goose_version:
            problems.insert(
                0, f"goose version: expected {backup.point.goose_version}, found {goose}"
            )
        if problems:
            raise RestoreMismatch(
                f"the restored database differs from backup {backup.id} "
                f"({len(problems)} difference(s)); the target was not touched",
                problems=problems,
            )
        secrets = check_secrets(staging) if check_secrets is not None else None
        if secrets is not None and secrets.wrong_key:
            raise KeyMismatch(
                f"{secrets.verdict()} in the restored database: the key is not the one backup "
                f"{backup.id} was sealed with; the target was not touched"
            )
        ctx.check()
        db.swap(staging, target)
    except BaseException:
        db.drop(staging)
        raise
    log.info("restored backup %s into %s", backup_id, target)
    return RestoreReport(
        backup_id=backup.id,
        database=target,
        replaced=exists,
        goose_version=goose,
        tables_checked=len(tables),
        rows_checked=sum(t.rows for t in tables),
        seconds=(ctx.now() - started).total_seconds(),
        restore_seconds=restore_seconds,
        artifacts=tuple(objects.summary().items()) if objects else (),
        secrets=secrets,
        method="stream" if loaded is None else "tables",
        jobs=1 if loaded is None else jobs,
        phases=() if loaded is None else loaded.phases,
        pieces=0 if loaded is None else loaded.pieces,
    )


def _restore_objects(
    repo: Repository,
    backup: BackupSet,
    store: ObjectStore,
    ctx: OpContext,
    transfers: int,
    *,
    versions: VersionedBucket | None,
) -> ArtifactRestore:
    index = load_index(repo, backup, ctx)
    if index is None:
        raise PreconditionFailed(
            f"backup {backup.id} holds no artefacts (it was taken without artifacts=URL); "
            "nothing was changed"
        )
    missing = missing_chunks(index.chunks(), repo.blob_sizes())  # the index read once
    if missing:
        raise IntegrityError(
            f"backup {backup.id} is damaged: {len(missing)} artefact chunk(s) missing; "
            "nothing was changed",
            problems=[f"missing blob {m}" for m in missing],
        )
    if versions is not None:
        return restore_from_versions(repo, index, versions, store, ctx=ctx, workers=transfers)
    return restore_artifacts(repo, index, store, ctx=ctx, workers=transfers)
