"""plan_retention / apply_retention: preview what a policy forgets, then forget exactly that."""

from __future__ import annotations

import logging
from datetime import datetime

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfirmationMismatch, PreconditionFailed
from gocdbackup.model.retention import (
    RetentionPlan,
    RetentionPolicy,
    decide_retention,
    retention_basis,
)
from gocdbackup.ops.catalog import list_backups
from gocdbackup.ops.wal import prune_wal
from gocdbackup.repository import Repository

log = logging.getLogger("gocdbackup.ops.retention")


def plan_retention(repo: Repository, policy: RetentionPolicy, *, now: datetime) -> RetentionPlan:
    """The dry run: what ``policy`` keeps and forgets among ``repo``'s backups at ``now``.
    Changes nothing."""
    return decide_retention(list_backups(repo), policy, now=now)


def apply_retention(
    repo: Repository, plan: RetentionPlan, *, confirm: str, ctx: OpContext
) -> tuple[str, ...]:
    """Forget exactly the backups ``plan`` forgets; their ids.

    Refused, with nothing changed, unless ``confirm`` equals ``plan.id`` and the repository
    still holds the backups the plan was made from (same ids, statuses and pins) and the plan
    is what its policy decides for them. Forgetting deletes a backup's manifest only: the
    blobs it referenced stay until garbage collection removes those no manifest references.
    Cancellation is checked before each deletion; a cancelled apply has forgotten a prefix of
    the plan, and planning again picks up the rest.  Then the archived WAL no remaining
    physical backup needs is deleted (:func:`~gocdbackup.ops.wal.prune_wal`).
    """
    if confirm != plan.id:
        raise ConfirmationMismatch(
            f"applying retention needs confirm={plan.id!r} (got {confirm!r}); nothing was changed"
        )
    with repo.lock("exclusive", "retention", ctx.clock):
        backups = list_backups(repo)
        if retention_basis(backups) != plan.basis:
            raise PreconditionFailed(
                f"the repository changed since plan {plan.id} was made (backups were added, "
                "removed or pinned); nothing was changed; plan again"
            )
        if decide_retention(backups, plan.policy, now=plan.now) != plan:
            raise PreconditionFailed(
                f"plan {plan.id} is not what its policy decides for this repository; "
                "nothing was changed; plan again"
            )
        forget = plan.forget
        total = len(forget)
        ctx.report("forget", 0, total, unit="backups")
        for n, backup_id in enumerate(forget, 1):
            ctx.check()
            repo.delete_manifest(backup_id)
            ctx.report("forget", n, total, unit="backups")
            log.info("forgot backup %s (plan %s)", backup_id, plan.id)
        # the WAL archive follows the physical backups that remain
        prune_wal(repo, list_backups(repo), ctx=ctx)
    log.info("retention plan %s applied: kept %d, forgot %d", plan.id, len(plan.keep), total)
    return forget
