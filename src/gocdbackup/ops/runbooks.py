"""gocdnext's two disaster runbooks as calls: "lost the bucket, kept Postgres" and "lost Postgres,
kept the bucket".  Each runs read-only and non-destructive steps at once, and the destructive
one only when ``confirm`` repeats the id a first run printed (the id names exactly the keys it
would act on, so it stays the same from one run to the next while nothing changes)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from attrs import frozen

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfirmationMismatch
from gocdbackup.model.cleanup import CleanupPlan, plan_cleanup
from gocdbackup.model.render import html_table
from gocdbackup.ops.cleanup import clean_orphans
from gocdbackup.ops.orphans import DEFAULT_GRACE, scan_orphans
from gocdbackup.ops.recovery import recover_missing, retire_missing
from gocdbackup.ports import Database, ObjectStore
from gocdbackup.repository import Repository


@frozen(kw_only=True)
class RunbookReport:
    runbook: str
    steps: tuple[tuple[str, dict[str, Any]], ...]
    #: what ``confirm`` must repeat to run the destructive step (None: nothing left to do)
    confirm_id: str | None
    applied: bool

    def summary(self) -> dict[str, Any]:
        return {
            "runbook": self.runbook,
            "steps": [{"step": name, **detail} for name, detail in self.steps],
            "confirm_id": self.confirm_id,
            "applied": self.applied,
        }

    def _repr_html_(self) -> str:
        rows = [
            {"step": name, "result": ", ".join(f"{k}={v}" for k, v in detail.items())}
            for name, detail in self.steps
        ]
        state = "applied" if self.applied else f"to apply: confirm={self.confirm_id}"
        return html_table(rows, caption=f"Runbook {self.runbook} ({state})")


def _keys_id(prefix: str, keys: Iterable[str]) -> str:
    digest = hashlib.sha256(json.dumps(sorted(keys)).encode()).hexdigest()[:12]
    return f"{prefix}-{digest}"


def _confirmed(confirm: str | None, expected: str | None) -> bool:
    if confirm is None or expected is None:
        return False
    if confirm != expected:
        raise ConfirmationMismatch(
            f"confirm must repeat {expected} (the keys changed since the id you were given, "
            "or it is not this runbook's id); nothing was retired or moved"
        )
    return True


def lost_bucket(
    db: Database,
    store: ObjectStore,
    repo: Repository,
    *,
    ctx: OpContext,
    grace: timedelta = DEFAULT_GRACE,
    confirm: str | None = None,
) -> RunbookReport:
    """The bucket was lost (or restored from an older point) but Postgres is current:
    1. scan; 2. write back every missing object the newest backups hold (no confirmation
    needed: only keys no object occupies are written); 3. with ``confirm``, retire the rows
    whose object no backup holds (gocdnext's sweeper then removes them; their downloads
    fail today anyway); 4. scan again and report."""
    steps: list[tuple[str, dict[str, Any]]] = []
    report = scan_orphans(db, store, ctx=ctx, grace=grace)
    steps.append(("scan", report.summary()))
    plan = plan_cleanup(report, rows=True)
    recovered = recover_missing(plan, repo, store, ctx=ctx)
    steps.append(("recover from backups", recovered.summary()))
    left = sorted(recovered.unrecoverable)
    confirm_id = _keys_id("retire", left) if left else None
    applied = _confirmed(confirm, confirm_id)
    if applied:
        retired = retire_missing(plan, db, store, ctx=ctx, confirm=plan.id, keys=left)
        steps.append(("retire unrecoverable rows", retired))
    else:
        steps.append(
            (
                "retire unrecoverable rows",
                {"pending_confirmation": len(left), "keys": left[:20]} if left else {"none": 0},
            )
        )
    after = scan_orphans(db, store, ctx=ctx, grace=grace)
    steps.append(("scan after", after.summary()))
    return RunbookReport(
        runbook="lost-bucket",
        steps=tuple(steps),
        confirm_id=None if applied else confirm_id,
        applied=applied,
    )


def lost_database(
    db: Database,
    store: ObjectStore,
    *,
    ctx: OpContext,
    grace: timedelta = DEFAULT_GRACE,
    confirm: str | None = None,
    mode: str = "quarantine",
    quarantine: ObjectStore | None = None,
) -> RunbookReport:
    """Postgres was restored from a backup older than the bucket: objects written since the
    dump have no row.  1. scan; 2. with ``confirm``, quarantine (or delete) the orphan objects
    in gocdnext's layouts older than the grace window, never foreign or recent ones (undo
    with ``undo_cleanup``); 3. scan again and report."""
    steps: list[tuple[str, dict[str, Any]]] = []
    report = scan_orphans(db, store, ctx=ctx, grace=grace)
    steps.append(("scan", report.summary()))
    plan: CleanupPlan = plan_cleanup(report)
    confirm_id = _keys_id(mode, (i.key for i in plan.items)) if plan.items else None
    applied = _confirmed(confirm, confirm_id)
    if applied:
        result = clean_orphans(
            plan, store, db, ctx=ctx, confirm=plan.id, mode=mode, quarantine=quarantine
        )
        steps.append((f"{mode} orphan objects", result.summary()))
        after = scan_orphans(db, store, ctx=ctx, grace=grace)
        steps.append(("scan after", after.summary()))
    else:
        steps.append(
            (
                f"{mode} orphan objects",
                {"pending_confirmation": len(plan.items), "bytes": plan.bytes}
                if plan.items
                else {"none": 0},
            )
        )
    return RunbookReport(
        runbook="lost-database",
        steps=tuple(steps),
        confirm_id=None if applied else confirm_id,
        applied=applied,
    )
