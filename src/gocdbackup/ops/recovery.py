"""The row side of reconciliation: rows whose object is missing get it back from the newest
backup that holds it (recover_missing), or are retired the way gocdnext's sweeper expects
(retire_missing)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfigError, EmptyStore, GocdBackupError
from gocdbackup.model.artifacts import ArtifactEntry, ArtifactIndex
from gocdbackup.model.cleanup import CleanupPlan, RecoverResult
from gocdbackup.model.orphans import OrphanRow, RowRef
from gocdbackup.ops.artifact_index import load_index
from gocdbackup.ops.artifact_restore import restore_artifacts
from gocdbackup.ops.artifacts import DEFAULT_WORKERS
from gocdbackup.ops.catalog import list_backups
from gocdbackup.ops.cleanup import MAX_REPORT_AGE, check_plan
from gocdbackup.ports import GocdnextData, ObjectStore
from gocdbackup.repository import Repository

log = logging.getLogger("gocdbackup.ops.recovery")


def _row_plan(plan: CleanupPlan) -> None:
    if plan.side != "row":
        raise ConfigError("this plan is for objects without rows: use clean_orphans")


def recover_missing(
    plan: CleanupPlan,
    repo: Repository,
    store: ObjectStore,
    *,
    ctx: OpContext,
    workers: int = DEFAULT_WORKERS,
) -> RecoverResult:
    """Write back every missing object of ``plan`` from the newest backup that holds it (with
    the SHA-256 the row records, where it records one).  Objects that reappeared meanwhile are
    left alone; what no backup holds is reported as unrecoverable.  Only writes keys the
    plan names, and only where nothing is."""
    _row_plan(plan)
    wanted = {i.key: i for i in plan.items if store.stat(i.key) is None}
    unrecoverable: dict[str, str] = {}
    found: dict[str, tuple[str, ArtifactEntry]] = {}
    backups = sorted(list_backups(repo), key=lambda b: (b.created_at, b.id), reverse=True)
    for backup in backups:
        if len(found) == len(wanted):
            break
        try:
            index = load_index(repo, backup, ctx)
        except GocdBackupError as exc:
            log.warning("cannot read the artefact index of %s: %s", backup.id, exc)
            continue
        for entry in index.entries if index else ():
            item = wanted.get(entry.ref.key)
            if item is None or entry.ref.key in found or not entry.outcome.stored:
                continue
            if item.sha256 and entry.sha256 != item.sha256:
                continue  # another content under the same key (a cache overwritten since)
            found[entry.ref.key] = (backup.id, entry)
    for key, item in wanted.items():
        if key not in found:
            unrecoverable[key] = (
                "no backup holds this object"
                if not item.sha256
                else "no backup holds this object with the SHA-256 its row records"
            )
    subset = ArtifactIndex(entries=tuple(e for _, e in found.values()))
    written = restore_artifacts(repo, subset, store, ctx=ctx, workers=workers)
    result = RecoverResult(
        recovered={k: b for k, (b, _) in found.items()},
        unrecoverable=unrecoverable,
        bytes=written.bytes_written,
    )
    log.info("recovered missing objects: %s", result.summary())
    return result


def retire_missing(
    plan: CleanupPlan,
    db: GocdnextData,
    store: ObjectStore,
    *,
    ctx: OpContext,
    confirm: str,
    keys: Iterable[str] | None = None,
    max_report_age: timedelta = MAX_REPORT_AGE,
    allow_empty_store: bool = False,
) -> dict[str, int]:
    """Retire the rows of ``plan`` (or only those of ``keys``) whose object is still missing:
    artefacts go to ``deleting`` (gocdnext's sweeper removes them), cache rows are deleted,
    a job's archived-log reference is cleared.  ``confirm`` must repeat ``plan.id``; rows that
    changed since the scan, and rows whose object is back, are left alone.

    A store that held no object at all when it was scanned may be a mistyped URL: its rows
    are retired only with ``allow_empty_store=True``."""
    _row_plan(plan)
    check_plan(plan, store, db, ctx=ctx, confirm=confirm, max_report_age=max_report_age)
    if plan.store_empty and not allow_empty_store:
        raise EmptyStore(
            f"the artefact store {store.url} held no object at all when it was scanned: if "
            "that is on purpose (the bucket was lost and no backup holds its objects), pass "
            "allow_empty_store=True; no row was retired"
        )
    only = None if keys is None else set(keys)
    rows: list[RowRef] = []
    back = 0
    for item in plan.items:
        if only is not None and item.key not in only:
            continue
        ctx.check()
        if store.stat(item.key) is not None:
            back += 1
            continue
        rows.append(_as_row(item))
    retired = db.retire_rows(rows)
    out = {"retired": retired, "object_back": back, "changed_since_scan": len(rows) - retired}
    log.info("retired rows without objects: %s", out)
    return out


def _as_row(item: OrphanRow) -> RowRef:
    return RowRef(
        key=item.key,
        table=item.table,
        row_id=item.row_id,
        status=item.status,
        sha256=item.sha256,
        stamped_at=item.stamped_at,
    )
