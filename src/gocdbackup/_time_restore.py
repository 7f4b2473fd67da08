"""Database and artefact bucket back to one instant, from Python (:func:`restore_to_time`):
the newest physical base backup before ``T`` recovered to ``T`` into a database, the bucket
rolled to ``T`` from its versions, and the orphan scan of the pair to show they agree."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import attrs

from gocdbackup._facade import GocdBackup
from gocdbackup._pitr import check_physical_restore, restore_physical
from gocdbackup._reconciler import Reconciler
from gocdbackup._store_pit import Bucket, as_time, versioned
from gocdbackup.errors import (
    ConfirmationMismatch,
    GocdBackupError,
    PreconditionFailed,
    TargetExists,
)
from gocdbackup.model.backup import BackupSet
from gocdbackup.model.pitr import TimeRestoreReport
from gocdbackup.ops.bucket_pit import apply_store_rollback, plan_store_rollback


def base_backup_for(gb: GocdBackup, at: datetime) -> BackupSet:
    """The newest physical base backup consistent at or before ``at``."""
    physical = [b for b in gb.list_backups() if b.method == "physical"]
    before = [b for b in physical if b.created_at <= at]
    if before:
        return max(before, key=lambda b: b.created_at)
    oldest = min((b.created_at for b in physical), default=None)
    raise PreconditionFailed(
        f"no physical base backup is consistent at or before {at.isoformat()}"
        + (f" (the oldest is from {oldest.isoformat()})" if oldest else " (there is none)")
        + "; take them with 'gocdbackup backup --physical' and archive WAL; nothing was done"
    )


def restore_to_time(
    gb: GocdBackup,
    at: datetime | str,
    *,
    db: str,
    artifacts: Bucket,
    dry_run: bool = True,
    confirm: str | None = None,
    replace: bool = False,
    bindir: str | None = None,
    storage_options: dict[str, Any] | None = None,
    transfers: int = 32,
) -> TimeRestoreReport:
    """gocdnext as it was at ``at``, database and artefacts together.  The database ``db``
    names gets gocdnext's database recovered to ``at`` (the newest physical base backup
    before it, WAL from the repository; an existing one is replaced only with
    ``replace=True``); the artefact bucket is rolled back to ``at`` from its own versions;
    then the pair is scanned for rows without objects and objects without rows.

    With ``dry_run`` (the default) only the plan and its id; ``dry_run=False,
    confirm=<id>`` carries it out.  The bucket goes first (its rollback resumes), then the
    database (all or nothing); running it again with the same id finishes what failed."""
    when = as_time(at)
    backup = base_backup_for(gb, when)
    ctx = gb.context()
    options = storage_options if storage_options is not None else gb.artifact_options
    bucket = versioned(artifacts, options, transfers=transfers)
    plan = plan_store_rollback(bucket, when, ctx=ctx)
    database = gb.database(db)
    digest = hashlib.sha256(f"{backup.id}\n{plan.id}\n{database.name}".encode()).hexdigest()
    plan_id = f"rtt-{digest[:16]}"
    report = TimeRestoreReport(id=plan_id, at=when, backup_id=backup.id, store_plan=plan.to_dict())
    if dry_run:
        return report
    if confirm != plan_id:
        raise ConfirmationMismatch(
            f"restoring to {when.isoformat()} needs confirm={plan_id!r} (got {confirm!r}); "
            "nothing was changed"
        )
    if database.exists(database.name) and not replace:
        raise TargetExists(
            f"database {database.name!r} already exists; pass replace=True to overwrite it; "
            "nothing was changed"
        )
    check_physical_restore(gb, backup.id, target_time=when, bindir=bindir)
    started = ctx.now()
    rolled = apply_store_rollback(bucket, when, confirm=plan.id, ctx=ctx)
    if rolled.failed:
        return _done(report, rolled.done, rolled.failed)
    try:
        recovered = restore_physical(
            gb,
            backup.id,
            confirm=backup.id,
            target_time=when,
            db=db,
            replace=replace,
            bindir=bindir,
        )
    except GocdBackupError as exc:
        # the bucket is at T and the database is not: say how to finish, and how to undo
        undo = (started - timedelta(seconds=1)).isoformat()
        halfway = GocdBackupError(
            f"{exc}. The bucket {bucket.url} was rolled to {when.isoformat()}, the database "
            "was not: run the same restore-to-time again to finish it, or roll the bucket "
            f"back to before this run with 'gocdbackup store restore-to-time --artifacts "
            f"{bucket.url} --time {undo} --dry-run' (then its --confirm)"
        )
        halfway.code = exc.code
        raise halfway from exc
    store = artifacts if isinstance(artifacts, str) else bucket.url
    scan = Reconciler(db, store, artifact_options=options, pg_bindir=bindir).scan(
        grace=timedelta(0)
    )
    return _done(
        report,
        rolled.done,
        rolled.failed,
        database=recovered,
        orphan_counts=dict(scan.counts),
        orphan_report=scan.id,
    )


def _done(
    report: TimeRestoreReport, done: dict[str, int], failed: dict[str, str], **more: Any
) -> TimeRestoreReport:
    return attrs.evolve(report, dry_run=False, store_done=done, store_failed=failed, **more)
