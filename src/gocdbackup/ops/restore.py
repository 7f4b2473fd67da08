"""restore_backup: verify everything first, then restore into a staging database, check it,
and only then put it in place of the target."""

from __future__ import annotations

import logging
import os
from datetime import datetime

from gocdbackup.context import OpContext
from gocdbackup.errors import (
    ConfirmationMismatch,
    IntegrityError,
    RestoreMismatch,
    TargetExists,
)
from gocdbackup.model.backup import BackupSet
from gocdbackup.model.restore import RestoreReport, diff_tables
from gocdbackup.ops._components import checked_stream, missing_chunks
from gocdbackup.ops.backup import DUMP_KIND
from gocdbackup.ports import Archive, Database
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
    db: Database,
    backup_id: str,
    *,
    confirm: str,
    ctx: OpContext,
    target: str | None = None,
    replace: bool = False,
) -> RestoreReport:
    """Restore ``backup_id`` into database ``target`` (default: the one ``db`` names).

    Order of work, so that a bad backup or a failed restore never costs the target anything:

    1. ``confirm`` must equal ``backup_id``; an existing target needs ``replace=True``.
    2. Every chunk is fetched, authenticated and hashed, the stream's SHA-256 is checked, and
       the archive's table of contents is read.
    3. The dump is restored into a staging database; its goose version and every table's row
       count must equal the manifest's.
    4. Only then are the target's sessions ended, the target dropped and the staging database
       renamed to the target.  On any failure before that, the staging database is dropped and
       the target is untouched.
    """
    if confirm != backup_id:
        raise ConfirmationMismatch(
            f"restoring needs confirm={backup_id!r} (got {confirm!r}); nothing was changed"
        )
    backup = repo.read_manifest(backup_id).backup
    target = target or db.name
    exists = db.exists(target)
    if exists and not replace:
        raise TargetExists(
            f"database {target!r} already exists; pass replace (--replace) to overwrite it"
        )
    started = ctx.now()
    component = backup.component(DUMP_KIND)
    missing = missing_chunks(component, repo.blob_sizes())
    if missing:
        raise IntegrityError(
            f"backup {backup_id} is damaged: {len(missing)} chunk(s) missing; nothing was changed",
            problems=[f"missing blob {m}" for m in missing],
        )
    with db.spool(checked_stream(repo, component, ctx, phase="verify"), ctx) as archive:
        db.list_archive(archive, min_tool_version=backup.database.pg_dump_version)
        ctx.check()
        report = _restore_verified(db, backup, archive, target, exists, ctx, started)
    log.info("restored backup %s into %s", backup_id, target)
    return report


def _restore_verified(  # noqa: PLR0917 - private helper of one caller
    db: Database,
    backup: BackupSet,
    archive: Archive,
    target: str,
    exists: bool,
    ctx: OpContext,
    started: datetime,
) -> RestoreReport:
    info = backup.database
    owner = info.owner if db.role_exists(info.owner) else None
    staging = staging_name(target, os.urandom(3).hex())
    db.create(staging, owner=owner, encoding=info.encoding)
    try:
        load_started = ctx.now()
        db.load(
            archive,
            staging,
            role=owner,
            min_tool_version=info.pg_dump_version,
            ctx=ctx,
        )
        restore_seconds = (ctx.now() - load_started).total_seconds()
        goose, tables = db.inspect(staging)
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
        ctx.check()
        db.swap(staging, target)
    except BaseException:
        db.drop(staging)
        raise
    return RestoreReport(
        backup_id=backup.id,
        database=target,
        replaced=exists,
        goose_version=goose,
        tables_checked=len(tables),
        rows_checked=sum(t.rows for t in tables),
        seconds=(ctx.now() - started).total_seconds(),
        restore_seconds=restore_seconds,
    )
