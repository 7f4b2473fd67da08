"""gocdnext's two disaster runbooks as calls: "lost the bucket, kept Postgres" and "lost Postgres,
kept the bucket".  Each runs read-only and non-destructive steps at once, and the destructive
one only when ``confirm`` repeats the id a first run printed (the id names exactly the keys it
would act on, so it stays the same from one run to the next while nothing changes).

A runbook says what it left undone (:attr:`RunbookReport.outstanding`): rows or objects
waiting for a confirmation, held back by the grace window, or beyond what the runbook can do.
:attr:`RunbookReport.complete` is True only when the store and the database agree."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfirmationMismatch
from gocdbackup.model.cleanup import CleanupPlan, plan_cleanup, plan_recovery
from gocdbackup.model.orphan_report import MemoryRows, OrphanReport, RowBuffer, describe_report
from gocdbackup.model.orphans import OrphanClass, OrphanRow
from gocdbackup.model.render import human_bytes
from gocdbackup.model.runbook import SAMPLE, Outstanding, RunbookReport, RunbookStep
from gocdbackup.ops.cleanup import clean_orphans
from gocdbackup.ops.orphans import DEFAULT_GRACE, scan_orphans
from gocdbackup.ops.recovery import recover_missing, retire_missing
from gocdbackup.ports import GocdnextData, ObjectStore
from gocdbackup.repository import Repository


def _keys_id(prefix: str, keys: Iterable[str]) -> str:
    digest = hashlib.sha256(json.dumps(sorted(keys)).encode()).hexdigest()[:12]
    return f"{prefix}-{digest}"


def _confirmed(confirm: str | None, expected: str | None) -> bool:
    if confirm is None or expected is None:
        return False  # nothing (left) to confirm: the report says whether all is done
    if confirm != expected:
        raise ConfirmationMismatch(
            f"confirm must repeat {expected} (the keys changed since the id you were given, "
            "or it is not this runbook's id); nothing was retired or moved"
        )
    return True


def _scan_step(name: str, report: OrphanReport) -> RunbookStep:
    return RunbookStep(name, report.summary(), describe_report(report))


def _held_back(items: Sequence[OrphanRow], grace: timedelta, reason: str) -> Outstanding | None:
    if not items:
        return None
    stamps = [i.stamped_at or i.modified_at for i in items]
    known = [s for s in stamps if s is not None]
    return Outstanding(
        kind="held_back",
        count=len(items),
        reason=reason,
        retry_after=max(known) + grace if known else None,
        keys=tuple(i.key for i in items[:SAMPLE]),
    )


def lost_bucket(
    db: GocdnextData,
    store: ObjectStore,
    repo: Repository,
    *,
    ctx: OpContext,
    grace: timedelta = DEFAULT_GRACE,
    confirm: str | None = None,
    allow_empty_store: bool = False,
    rows_buffer: Callable[[], RowBuffer] = MemoryRows,
) -> RunbookReport:
    """The bucket was lost (or restored from an older point) but Postgres is current:
    1. scan; 2. write back every missing object of a ``ready`` row that a backup holds under
    the row's SHA-256, however recent the row (only keys no object occupies are written, so
    no confirmation is needed); 3. with ``confirm``, retire the rows older than ``grace`` whose
    object no backup holds (gocdnext's sweeper then removes them; their downloads fail today
    anyway); 4. scan again and report what is left.

    Retiring rows against a store that held no object and got none back needs
    ``allow_empty_store=True`` as well (it may be a mistyped URL)."""
    steps: list[RunbookStep] = []
    report = scan_orphans(db, store, ctx=ctx, grace=grace, rows_buffer=rows_buffer)
    steps.append(_scan_step("scan", report))
    recovered = recover_missing(plan_recovery(report), repo, store, ctx=ctx)
    steps.append(RunbookStep("recover from backups", recovered.summary(), recovered.describe()))
    retire_plan = plan_cleanup(report, rows=True)
    unrecoverable = set(recovered.unrecoverable)
    left = sorted(i.key for i in retire_plan.items if i.key in unrecoverable)
    confirm_id = _keys_id("retire", left) if left else None
    applied = _confirmed(confirm, confirm_id)
    if applied:
        retired = retire_missing(
            retire_plan,
            db,
            store,
            ctx=ctx,
            confirm=retire_plan.id,
            keys=left,
            allow_empty_store=allow_empty_store or bool(recovered.recovered),
        )
        steps.append(
            RunbookStep(
                "retire unrecoverable rows",
                retired,
                f"retired {retired['retired']:,} row(s); {retired['object_back']:,} had their "
                f"object back, {retired['changed_since_scan']:,} changed since the scan",
            )
        )
    else:
        steps.append(
            RunbookStep(
                "retire unrecoverable rows",
                {"pending_confirmation": len(left), "keys": left[:SAMPLE]},
                f"{len(left):,} row(s) no backup can recover wait for confirm={confirm_id}"
                if left
                else "nothing to retire",
            )
        )
    after = scan_orphans(db, store, ctx=ctx, grace=grace, rows_buffer=rows_buffer)
    steps.append(_scan_step("scan after", after))
    return RunbookReport(
        runbook="lost-bucket",
        steps=tuple(steps),
        confirm_id=None if applied else confirm_id,
        applied=applied,
        outstanding=_bucket_outstanding(after, grace),
    )


def _bucket_outstanding(after: OrphanReport, grace: timedelta) -> tuple[Outstanding, ...]:
    out: list[Outstanding] = []
    missing = [i.key for i in after.rows(OrphanClass.MISSING_OBJECT)]
    if missing:
        out.append(
            Outstanding(
                kind="confirm",
                count=len(missing),
                reason="rows whose object no backup holds: retiring them lets gocdnext's "
                "sweeper remove them",
                confirm_id=_keys_id("retire", missing),
                keys=tuple(missing[:SAMPLE]),
            )
        )
    recent = [i for i in after.rows(OrphanClass.TOO_RECENT) if i.recoverable]
    held = _held_back(
        recent,
        grace,
        "ready rows whose object no backup holds, younger than the grace window: they may "
        "only be retired once it has passed",
    )
    if held:
        out.append(held)
    return tuple(out)


def lost_database(
    db: GocdnextData,
    store: ObjectStore,
    *,
    ctx: OpContext,
    grace: timedelta = DEFAULT_GRACE,
    confirm: str | None = None,
    mode: str = "quarantine",
    quarantine: ObjectStore | None = None,
    rows_buffer: Callable[[], RowBuffer] = MemoryRows,
) -> RunbookReport:
    """Postgres was restored from a backup older than the bucket: objects written since the
    dump have no row.  1. scan; 2. with ``confirm``, quarantine (or delete) the orphan objects
    in gocdnext's layouts older than the grace window, never foreign or recent ones (undo
    with ``undo_cleanup``); 3. scan again and report what is left."""
    steps: list[RunbookStep] = []
    report = scan_orphans(db, store, ctx=ctx, grace=grace, rows_buffer=rows_buffer)
    steps.append(_scan_step("scan", report))
    plan: CleanupPlan = plan_cleanup(report)
    confirm_id = _keys_id(mode, (i.key for i in plan.items)) if plan.items else None
    applied = _confirmed(confirm, confirm_id)
    final = report
    if applied:
        result = clean_orphans(
            plan, store, db, ctx=ctx, confirm=plan.id, mode=mode, quarantine=quarantine
        )
        steps.append(RunbookStep(f"{mode} orphan objects", result.summary(), result.describe()))
        final = scan_orphans(db, store, ctx=ctx, grace=grace, rows_buffer=rows_buffer)
        steps.append(_scan_step("scan after", final))
    else:
        steps.append(
            RunbookStep(
                f"{mode} orphan objects",
                {"pending_confirmation": len(plan.items), "bytes": plan.bytes},
                f"{len(plan.items):,} orphan object(s) ({human_bytes(plan.bytes)}) wait for "
                f"confirm={confirm_id}"
                if plan.items
                else "no orphan object to move",
            )
        )
    return RunbookReport(
        runbook="lost-database",
        steps=tuple(steps),
        confirm_id=None if applied else confirm_id,
        applied=applied,
        outstanding=_database_outstanding(final, grace, mode),
    )


def _database_outstanding(
    final: OrphanReport, grace: timedelta, mode: str
) -> tuple[Outstanding, ...]:
    out: list[Outstanding] = []
    orphans = [i.key for i in plan_cleanup(final).items]
    if orphans:
        out.append(
            Outstanding(
                kind="confirm",
                count=len(orphans),
                reason=f"objects in gocdnext's layouts that no row references, to {mode}",
                confirm_id=_keys_id(mode, orphans),
                keys=tuple(orphans[:SAMPLE]),
            )
        )
    held = _held_back(
        [i for i in final.rows(OrphanClass.TOO_RECENT) if i.unjudged_object],
        grace,
        "objects without rows, younger than the grace window: an upload may still be "
        "writing its row",
    )
    if held:
        out.append(held)
    missing = [i.key for i in final.rows(OrphanClass.MISSING_OBJECT)]
    if missing:
        out.append(
            Outstanding(
                kind="rows_without_objects",
                count=len(missing),
                reason="rows whose object the store does not hold (the restored database is "
                "older than what the sweeper removed): the lost-bucket runbook writes them back "
                "from backups or retires them",
                keys=tuple(missing[:SAMPLE]),
            )
        )
    return tuple(out)
