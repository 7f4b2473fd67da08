"""plan_retention / apply_retention against the fakes: confirm, refusal when the repository
changed, exactly the plan is forgotten, re-planning is a no-op, pins survive, cancellation."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from gocdbackup.context import CancelToken, OpContext
from gocdbackup.errors import Cancelled, ConfirmationMismatch, PreconditionFailed
from gocdbackup.model import BackupSet, ProgressEvent
from gocdbackup.model.retention import Decision, RetentionPolicy
from gocdbackup.ops import list_backups, pin_backup, take_backup
from gocdbackup.ops.retention import apply_retention, plan_retention
from gocdbackup.repository import Repository
from gocdbackup.testing import (
    FakeClock,
    FakeDatabaseContents,
    FakePostgres,
    MemoryStore,
    RecordingProgress,
)

POLICY = RetentionPolicy(keep_last=2, keep_daily=3, tz="Europe/Berlin")


@pytest.fixture
def small_db() -> FakePostgres:
    return FakePostgres(
        "gocdnext",
        {"gocdnext": FakeDatabaseContents(tables={"public.runs": 3}, payload_bytes=4096)},
    )


@pytest.fixture
def backups(
    repo: Repository, small_db: FakePostgres, ctx: OpContext, clock: FakeClock
) -> list[BackupSet]:
    taken = []
    for _ in range(10):  # several hours apart, over three days
        taken.append(take_backup(repo, small_db, ctx=ctx))
        clock.advance(timedelta(hours=7))
    assert [b.id for b in list_backups(repo)] == [b.id for b in taken]
    return taken


def pin(repo: Repository, backup: BackupSet, ctx: OpContext) -> BackupSet:
    return pin_backup(repo, backup.id, reason="legal hold", ctx=ctx)


def test_plan_is_a_dry_run_over_every_backup(
    repo: Repository, backups: list[BackupSet], clock: FakeClock, store: MemoryStore
) -> None:
    before = dict(store.objects)
    plan = plan_retention(repo, POLICY, now=clock.now())
    assert store.objects == before
    assert [d.backup_id for d in plan.decisions] == [b.id for b in reversed(backups)]
    assert plan.forget  # ten backups over a few days: some have no slot
    assert plan.keep[0] == backups[-1].id
    assert plan_retention(repo, POLICY, now=plan.now) == plan


def test_wrong_confirm_changes_nothing(
    repo: Repository, backups: list[BackupSet], clock: FakeClock, ctx: OpContext, store: MemoryStore
) -> None:
    plan = plan_retention(repo, POLICY, now=clock.now())
    before = dict(store.objects)
    with pytest.raises(ConfirmationMismatch, match="nothing was changed") as info:
        apply_retention(repo, plan, confirm=backups[0].id, ctx=ctx)
    assert plan.id in str(info.value)
    assert store.objects == before


def test_apply_refuses_when_a_backup_was_added_since_the_plan(
    repo: Repository,
    backups: list[BackupSet],
    small_db: FakePostgres,
    clock: FakeClock,
    ctx: OpContext,
) -> None:
    plan = plan_retention(repo, POLICY, now=clock.now())
    take_backup(repo, small_db, ctx=ctx)
    with pytest.raises(PreconditionFailed, match=f"changed since plan {plan.id}.*plan again"):
        apply_retention(repo, plan, confirm=plan.id, ctx=ctx)
    assert len(repo.backup_ids()) == len(backups) + 1


def test_apply_refuses_when_a_backup_was_pinned_since_the_plan(
    repo: Repository, backups: list[BackupSet], clock: FakeClock, ctx: OpContext
) -> None:
    plan = plan_retention(repo, POLICY, now=clock.now())
    pin(repo, next(b for b in backups if b.id in plan.forget), ctx)
    with pytest.raises(PreconditionFailed, match="changed since plan"):
        apply_retention(repo, plan, confirm=plan.id, ctx=ctx)
    assert len(repo.backup_ids()) == len(backups)


def test_apply_refuses_a_plan_its_policy_would_not_make(
    repo: Repository, backups: list[BackupSet], clock: FakeClock, ctx: OpContext
) -> None:
    plan = plan_retention(repo, POLICY, now=clock.now())
    forged = attrs.evolve(
        plan,
        decisions=tuple(
            Decision(backup_id=d.backup_id, keep=False, reasons=("no slot",))
            for d in plan.decisions
        ),
    )
    with pytest.raises(PreconditionFailed, match="not what its policy decides"):
        apply_retention(repo, forged, confirm=forged.id, ctx=ctx)
    assert len(repo.backup_ids()) == len(backups)


def test_apply_forgets_exactly_the_plan_and_leaves_blobs(
    repo: Repository,
    backups: list[BackupSet],
    clock: FakeClock,
    ctx: OpContext,
    progress: RecordingProgress,
) -> None:
    plan = plan_retention(repo, POLICY, now=clock.now())
    blobs = repo.blob_sizes()
    forgotten = apply_retention(repo, plan, confirm=plan.id, ctx=ctx)
    assert forgotten == plan.forget
    assert sorted(repo.backup_ids()) == sorted(plan.keep)
    assert repo.blob_sizes() == blobs  # garbage collection's job
    events = [e for e in progress.events if e.phase == "forget"]
    assert events[0] == ProgressEvent(phase="forget", done=0, total=len(forgotten), unit="backups")
    assert [e.done for e in events] == list(range(len(forgotten) + 1))
    assert all(e.unit == "backups" for e in events)


def test_re_planning_after_apply_forgets_nothing(
    repo: Repository, backups: list[BackupSet], clock: FakeClock, ctx: OpContext
) -> None:
    now = clock.now()
    plan = plan_retention(repo, POLICY, now=now)
    apply_retention(repo, plan, confirm=plan.id, ctx=ctx)
    again = plan_retention(repo, POLICY, now=now)
    assert again.forget == ()
    assert again.keep == plan.keep
    assert apply_retention(repo, again, confirm=again.id, ctx=ctx) == ()


def test_pinned_backups_survive_any_policy(
    repo: Repository, backups: list[BackupSet], clock: FakeClock, ctx: OpContext
) -> None:
    oldest = pin(repo, backups[0], ctx)
    plan = plan_retention(repo, RetentionPolicy(), now=clock.now())
    assert set(plan.keep) == {oldest.id, backups[-1].id}
    decision = next(d for d in plan.decisions if d.backup_id == oldest.id)
    assert decision.reasons == ("pinned: legal hold",)
    apply_retention(repo, plan, confirm=plan.id, ctx=ctx)
    assert sorted(repo.backup_ids()) == sorted([oldest.id, backups[-1].id])
    assert repo.read_manifest(oldest.id).backup.pin == "legal hold"


def test_cancel_stops_between_deletions(
    repo: Repository, backups: list[BackupSet], clock: FakeClock
) -> None:
    token = CancelToken()

    def cancel_after_first(event: ProgressEvent) -> None:
        if event.phase == "forget" and event.done == 1:
            token.cancel("stop")

    ctx = OpContext(progress=RecordingProgress(cancel_after_first), cancel=token, clock=clock)
    plan = plan_retention(repo, POLICY, now=clock.now())
    assert len(plan.forget) > 1
    with pytest.raises(Cancelled):
        apply_retention(repo, plan, confirm=plan.id, ctx=ctx)
    assert plan.forget[0] not in repo.backup_ids()
    assert len(repo.backup_ids()) == len(backups) - 1
    rest = plan_retention(repo, POLICY, now=plan.now)
    assert rest.forget == plan.forget[1:]
