"""What a cleanup leaves for a new scan, as the library decides it (the CLI only renders it):
:attr:`CleanupResult.rescan_keys`, :func:`left_after_cleanup`, :func:`cleanable_objects`,
:attr:`UndoResult.complete`."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

from gocdbackup.context import OpContext
from gocdbackup.model.cleanup import (
    RESCAN_REASONS,
    CleanupResult,
    UndoResult,
    cleanable_objects,
    left_after_cleanup,
    plan_cleanup,
)
from gocdbackup.model.orphan_report import OrphanReport
from gocdbackup.ops.cleanup import clean_orphans
from gocdbackup.ops.orphans import scan_orphans
from gocdbackup.testing import (
    FakeClock,
    FakeDatabaseContents,
    FakeGocdnext,
    FakePostgres,
    MemoryStore,
)


def _key() -> str:
    u = [str(uuid.uuid4()) for _ in range(3)]
    return f"run/{u[0]}/job/{u[1]}/{u[2]}"


def _world(clock: FakeClock) -> tuple[MemoryStore, FakeGocdnext]:
    store = MemoryStore("memory://gocdnext-artifacts", clock=clock)
    pg = FakePostgres("gocdnext", {"gocdnext": FakeDatabaseContents(tables={"public.runs": 1})})
    return store, FakeGocdnext(pg, clock=clock)


def _scan(store: MemoryStore, db: FakeGocdnext, clock: FakeClock) -> OrphanReport:
    return scan_orphans(db, store, ctx=OpContext(clock=clock), grace=timedelta(hours=6))


def test_a_finished_cleanup_leaves_nothing(clock: FakeClock) -> None:
    store, db = _world(clock)
    for _ in range(2):
        store.write(_key(), os.urandom(100))
    store.write("exports/report.csv", b"foreign")
    clock.advance(timedelta(days=1))
    report = _scan(store, db, clock)
    assert cleanable_objects(report) == 2  # the foreign object is never cleaned by default
    plan = plan_cleanup(report)
    done = clean_orphans(plan, store, db, ctx=OpContext(clock=clock), confirm=plan.id)
    assert done.acted_on == 2
    assert done.rescan_keys == ()
    left = left_after_cleanup(report, done)
    assert left.complete
    assert (left.changed, left.unjudged, left.grace) == (0, 0, timedelta(hours=6))


def test_changed_and_too_recent_objects_need_a_new_scan(clock: FakeClock) -> None:
    store, db = _world(clock)
    rewritten, kept = _key(), _key()
    store.write(rewritten, os.urandom(100))
    store.write(kept, os.urandom(100))
    clock.advance(timedelta(days=1))
    young = _key()
    store.write(young, os.urandom(100))  # younger than the grace window: not judged yet
    report = _scan(store, db, clock)
    assert cleanable_objects(report) == 2
    plan = plan_cleanup(report)
    store.write(rewritten, os.urandom(300))  # rewritten after the scan
    done = clean_orphans(plan, store, db, ctx=OpContext(clock=clock), confirm=plan.id)
    assert done.skipped == {rewritten: "changed since the scan"}
    assert done.rescan_keys == (rewritten,)
    left = left_after_cleanup(report, done)
    assert (left.changed, left.unjudged, left.complete) == (1, 1, False)
    assert left.summary()["complete"] is False


def test_only_reasons_a_new_scan_can_judge_ask_for_one() -> None:
    skipped = {
        "a": "changed since the scan",
        "b": "newer than the grace window",
        "c": "changed during the cleanup",
        "d": "referenced by a row now",
        "e": "gone since the scan",
    }
    result = CleanupResult(
        id="clean-1", plan_id="plan-1", mode="quarantine", done={}, bytes=0, skipped=skipped
    )
    assert result.rescan_keys == ("a", "b", "c")
    assert {skipped[k] for k in result.rescan_keys} == RESCAN_REASONS
    assert result.acted_on == 0


def test_an_undo_is_complete_only_without_conflicts_or_losses() -> None:
    def undo(conflicts: tuple[str, ...] = (), lost: tuple[str, ...] = ()) -> UndoResult:
        return UndoResult(
            cleanup_id="c", restored=1, already_there=0, conflicts=conflicts, lost=lost
        )

    assert undo().complete
    assert not undo(conflicts=("k",)).complete
    assert not undo(lost=("k",)).complete
