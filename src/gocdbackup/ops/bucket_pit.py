"""Roll a versioned artefact bucket to a point in time: plan (a dry run with an id), then carry
out exactly that plan, server-side, in batches, resumable by running it again."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

from attrs import frozen

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfigError, ConfirmationMismatch, PreconditionFailed, VersioningOff
from gocdbackup.model.bucket_versions import (
    ObjectVersion,
    PitAction,
    PitPlan,
    PitStep,
    key_histories,
    plan_rollback,
)
from gocdbackup.model.store_audit import versioning_advice
from gocdbackup.ports_bucket import VersionedBucket

#: steps handed to the store at once (its driver runs each batch concurrently; a delete
#: batch is one DeleteObjects request)
BATCH = 1000


@frozen(kw_only=True)
class PitResult:
    plan: PitPlan
    #: steps carried out, by action
    done: dict[str, int]
    #: key -> the store's reason, for each step that failed (run the plan again to retry)
    failed: dict[str, str]
    #: only planned: nothing was changed
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, object]:
        return {
            **self.plan.to_dict(),
            "dry_run": self.dry_run,
            "ok": self.ok,
            "done": self.done,
            "failed": [{"key": k, "reason": v} for k, v in sorted(self.failed.items())],
        }


def run_in_batches(
    run: Callable[[Sequence[PitStep]], dict[str, str]],
    steps: Sequence[PitStep],
    *,
    ctx: OpContext,
    phase: str = "roll back",
    total: int | None = None,
    before: int = 0,
    message: str = "",
) -> dict[str, str]:
    """``run`` (a bucket's restore, delete or copy) over ``steps``, :data:`BATCH` at a time,
    cancellable and reported between batches (``before`` of ``total`` done already); the
    keys that failed, with the store's reason."""
    failed: dict[str, str] = {}
    for start in range(0, len(steps), BATCH):
        ctx.check()
        batch = steps[start : start + BATCH]
        failed.update(run(batch))
        done = before + start + len(batch)
        ctx.report(
            phase, done, len(steps) if total is None else total, unit="objects", message=message
        )
    return failed


def _check_time(bucket: VersionedBucket, at: datetime, ctx: OpContext) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ConfigError(f"the time {at.isoformat()} has no time zone; give one (e.g. +00:00)")
    now = ctx.now()
    if at > now:
        raise ConfigError(f"the time {at.isoformat()} is in the future (now: {now.isoformat()})")
    settings = bucket.settings()
    if settings.versioning == "off":
        what = "a filesystem store" if settings.provider == "file" else "versioning is off"
        raise VersioningOff(
            f"{bucket.url} keeps no history to roll back to ({what}); nothing was changed. "
            f"To protect what is written from now on: {versioning_advice(settings)}"
        )
    days = settings.noncurrent_expiry_days
    if days is not None and at < now - timedelta(days=days):
        raise PreconditionFailed(
            f"{bucket.url} expires noncurrent versions after {days} day(s): the versions "
            f"current at {at.isoformat()} may be gone, and a rollback would delete what it "
            f"cannot find; choose a time within the last {days} day(s)"
        )


def plan_store_rollback(
    bucket: VersionedBucket,
    at: datetime,
    *,
    ctx: OpContext,
    into: VersionedBucket | None = None,
) -> PitPlan:
    """What makes ``bucket`` (or ``into``) hold exactly what ``bucket`` held at ``at``;
    nothing is changed.  :class:`~gocdbackup.errors.VersioningOff` where there is no history."""
    _check_time(bucket, at, ctx)
    there = None
    if into is not None:
        there = {v.key: v for v in into.current()}
    listed = 0

    def counted(versions: Iterator[ObjectVersion]) -> Iterator[ObjectVersion]:
        nonlocal listed
        for v in versions:
            listed += 1
            if listed % 1000 == 0:
                ctx.check()
                ctx.report("list versions", listed, unit="versions")
            yield v

    histories = key_histories(counted(bucket.versions()))
    plan = plan_rollback(
        histories, at, store=bucket.url, into=there, into_url=None if into is None else into.url
    )
    ctx.report("list versions", listed, listed, unit="versions")
    return plan


def apply_store_rollback(
    bucket: VersionedBucket,
    at: datetime,
    *,
    confirm: str,
    ctx: OpContext,
    into: VersionedBucket | None = None,
    copies: bool = True,
) -> PitResult:
    """Carry out the plan to ``at`` once ``confirm`` repeats its id.  The bucket is listed
    again and planned afresh: steps already done drop out (running it again resumes), and a
    bucket changed since the dry run plans another id, which is refused.  ``copies=False``
    leaves the restores to someone else (an S3 Batch Operations job) and only deletes."""
    fresh = plan_store_rollback(bucket, at, ctx=ctx, into=into)
    if confirm != fresh.id:
        raise ConfirmationMismatch(
            f"--confirm {confirm!r} is not the plan for {bucket.url} at {at.isoformat()} now "
            f"({fresh.id}): the bucket changed since the plan was made, or the id is mistyped; "
            "nothing was changed: review the plan again (dry run)"
        )
    work = fresh.work()
    failed: dict[str, str] = {}
    actions: dict[PitAction, Callable[[Sequence[PitStep]], dict[str, str]]]
    if into is None:
        actions = {
            PitAction.RESTORE: bucket.restore,
            PitAction.DELETE: lambda steps: bucket.delete([s.key for s in steps]),
        }
        if not copies:
            del actions[PitAction.RESTORE]
    else:
        target = into
        actions = {PitAction.COPY: lambda steps: bucket.copy_into(steps, target)}
    done = {a.value: 0 for a in actions}
    finished = 0
    for action, run in actions.items():
        steps = [s for s in work if s.action is action]
        bad = run_in_batches(
            run, steps, ctx=ctx, total=len(work), before=finished, message=action.value
        )
        failed.update(bad)
        done[action.value] = len(steps) - len(bad)
        finished += len(steps)
    return PitResult(plan=fresh, done=done, failed=failed)


def run_manifest(
    bucket: VersionedBucket, rows: list[tuple[str, str]], *, ctx: OpContext
) -> PitResult:
    """What S3 Batch Operations does with a rollback's manifest (``S3PutObjectCopy`` of each
    listed version onto its key), done here: ``rows`` are ``(key, version)`` relative to
    ``bucket``.  The same server-side copies as an in-process rollback."""
    steps = [PitStep(key=k, action=PitAction.RESTORE, version=v) for k, v in rows]
    failed = run_in_batches(bucket.restore, steps, ctx=ctx)
    plan = PitPlan(
        id="manifest", store=bucket.url, at=ctx.now(), steps=tuple(steps), keys=len(steps)
    )
    return PitResult(plan=plan, done={"restore": len(steps) - len(failed)}, failed=failed)
