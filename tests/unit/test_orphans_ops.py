"""Orphan scan, cleanup with quarantine and undo, purge, recovery and the runbooks, against the
public fakes."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from datetime import timedelta

import attrs
import pytest

from gocdbackup.context import OpContext
from gocdbackup.errors import (
    ConfigError,
    ConfirmationMismatch,
    ReportMismatch,
    ScanInterrupted,
    StorageError,
)
from gocdbackup.model.artifacts import ObjectKind, ObjectRef
from gocdbackup.model.cleanup import plan_cleanup
from gocdbackup.model.orphans import OrphanClass, OrphanRow, RowRef
from gocdbackup.ops import take_backup
from gocdbackup.ops.cleanup import clean_orphans
from gocdbackup.ops.orphans import QUARANTINE_PREFIX, Pacer, scan_orphans
from gocdbackup.ops.quarantine import list_cleanups, purge_quarantine, undo_cleanup
from gocdbackup.ops.recovery import recover_missing, retire_missing
from gocdbackup.ops.runbooks import lost_bucket, lost_database
from gocdbackup.ports import ObjectInfo
from gocdbackup.repository import Repository
from gocdbackup.testing import (
    FakeClock,
    FakeDatabaseContents,
    FakeGocdnext,
    FakePostgres,
    MemoryStore,
)

HOUR = timedelta(hours=1)


def u() -> str:
    return str(uuid.uuid4())


def art_key() -> str:
    return f"run/{u()}/job/{u()}/{u()}"


class World:
    """A gocdnext database (rows) and its store (objects), three days old."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.store = MemoryStore("memory://gocdnext-artifacts", clock=clock)
        self.fake = FakeDatabaseContents(tables={"public.runs": 1})
        self.pg = FakePostgres("gocdnext", {"gocdnext": self.fake})
        self.db = FakeGocdnext(self.pg, clock=clock)
        self.data: dict[str, bytes] = {}

    def ctx(self) -> OpContext:
        return OpContext(clock=self.clock)

    def obj(self, key: str, size: int = 2000) -> bytes:
        data = os.urandom(size)
        self.store.write(key, data)
        self.data[key] = data
        return data

    def row(self, key: str, status: str = "ready", data: bytes | None = None) -> RowRef:
        data = data if data is not None else self.data.get(key, b"")
        r = RowRef(
            key=key,
            table="artifacts",
            row_id=u(),
            status=status,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest() if data else "",
            stamped_at=self.clock.now(),
        )
        self.fake.rows.append(r)
        self.fake.objects.append(
            ObjectRef(
                kind=ObjectKind.ARTIFACT,
                key=key,
                row_id=r.row_id,
                status=status,
                size_bytes=len(data),
                sha256=r.sha256,
            )
        )
        return r


@pytest.fixture
def world(clock: FakeClock) -> World:
    w = World(clock)
    for _ in range(3):
        key = art_key()
        w.row(key, data=w.obj(key))  # ok
    w.missing = art_key()
    w.row(w.missing, data=os.urandom(100))  # its object was never written
    w.orphans = [art_key() for _ in range(3)]
    for key in w.orphans:
        w.obj(key)
    w.foreign = "exports/report.csv"
    w.obj(w.foreign)
    clock.advance(timedelta(days=3))
    return w


def test_scan_classifies_both_sides(world: World) -> None:
    report = scan_orphans(world.db, world.store, ctx=world.ctx())
    assert report.counts["ok"] == 3
    assert report.counts["missing_object"] == 1
    assert report.counts["orphan_object"] == 3
    assert report.counts["foreign_object"] == 1
    assert report.bytes["orphan_object"] == 6000
    assert report.source.database == "fake://gocdnext"
    assert {r.key for r in report.rows("orphan_object")} == set(world.orphans)
    missing = next(report.rows("missing_object"))
    assert (missing.table, missing.key) == ("artifacts", world.missing)
    assert report.complete


def test_quarantine_then_undo_puts_back_every_byte(world: World) -> None:
    report = scan_orphans(world.db, world.store, ctx=world.ctx())
    plan = plan_cleanup(report)
    before = dict(world.store.objects)
    dry = clean_orphans(plan, world.store, world.db, ctx=world.ctx(), confirm=plan.id, dry_run=True)
    assert dry.done == {"orphan_object": 3, "partial_upload": 0}
    assert world.store.objects == before  # a dry run writes nothing
    done = clean_orphans(plan, world.store, world.db, ctx=world.ctx(), confirm=plan.id)
    assert done.done["orphan_object"] == 3
    for key in world.orphans:
        assert not world.store.exists(key)
        assert world.store.read(f"{QUARANTINE_PREFIX}{done.id}/objects/{key}") == world.data[key]
    assert world.store.exists(world.foreign)  # foreign objects are never touched by default
    again = scan_orphans(world.db, world.store, ctx=world.ctx())
    assert again.counts["orphan_object"] == 0  # the quarantine is not seen as orphans
    assert [c["id"] for c in list_cleanups(world.store)] == [done.id]
    assert done.id in done._repr_html_()  # notebooks show the results as tables
    undone = undo_cleanup(done.id, world.store, ctx=world.ctx())
    assert (undone.restored, undone.conflicts, undone.lost) == (3, (), ())
    assert "restored" in undone._repr_html_()
    assert world.store.objects == before
    assert list_cleanups(world.store) == []


def test_a_racing_writer_never_loses_an_object(world: World) -> None:
    report = scan_orphans(world.db, world.store, ctx=world.ctx())
    plan = plan_cleanup(report)
    claimed, rewritten, untouched = world.orphans
    world.row(claimed)  # gocdnext wrote a row for it after the scan
    world.obj(rewritten, size=3000)  # and rewrote this one
    done = clean_orphans(plan, world.store, world.db, ctx=world.ctx(), confirm=plan.id)
    assert done.skipped == {
        claimed: "referenced by a row now",
        rewritten: "changed since the scan",
    }
    assert world.store.read(claimed) == world.data[claimed]
    assert world.store.read(rewritten) == world.data[rewritten]
    assert not world.store.exists(untouched)


def test_refusals_change_nothing(world: World, clock: FakeClock) -> None:
    report = scan_orphans(world.db, world.store, ctx=world.ctx())
    plan = plan_cleanup(report)
    before = dict(world.store.objects)
    with pytest.raises(ConfirmationMismatch):
        clean_orphans(plan, world.store, world.db, ctx=world.ctx(), confirm=report.id)
    other = MemoryStore("memory://another-bucket")
    with pytest.raises(ReportMismatch, match="was made for memory://gocdnext-artifacts"):
        clean_orphans(plan, other, world.db, ctx=world.ctx(), confirm=plan.id)
    other_db = FakeGocdnext(FakePostgres("staging", {"staging": FakeDatabaseContents()}))
    with pytest.raises(ReportMismatch, match="fake://gocdnext"):
        clean_orphans(plan, world.store, other_db, ctx=world.ctx(), confirm=plan.id)
    with pytest.raises(ConfigError, match="mode"):
        clean_orphans(plan, world.store, world.db, ctx=world.ctx(), confirm=plan.id, mode="x")
    with pytest.raises(ConfigError, match="never acts on"):
        plan_cleanup(report, ["ok"])
    with pytest.raises(ConfigError, match="not both"):
        plan_cleanup(report, ["orphan_object", "missing_object"])
    clock.advance(timedelta(hours=25))
    with pytest.raises(ReportMismatch, match="old"):
        clean_orphans(plan, world.store, world.db, ctx=world.ctx(), confirm=plan.id)
    assert world.store.objects == before


class ReadOnlyStore(MemoryStore):
    def write(self, key: str, data: bytes) -> None:
        raise StorageError(f"write {key!r} at {self.url}: access denied")

    def write_stream(self, key: str, chunks: object) -> int:
        raise StorageError(f"write {key!r} at {self.url}: access denied")


def test_unwritable_quarantine_moves_nothing(world: World) -> None:
    plan = plan_cleanup(scan_orphans(world.db, world.store, ctx=world.ctx()))
    before = dict(world.store.objects)
    with pytest.raises(StorageError, match="access denied"):
        clean_orphans(
            plan,
            world.store,
            world.db,
            ctx=world.ctx(),
            confirm=plan.id,
            quarantine=ReadOnlyStore("memory://quarantine"),
        )
    assert world.store.objects == before


class CrashingStore(MemoryStore):
    """Dies (like kill -9) at the second delete of an original."""

    deletes = 0

    def delete(self, key: str) -> None:
        if not key.startswith(QUARANTINE_PREFIX):
            self.deletes += 1
            if self.deletes == 2:
                raise KeyboardInterrupt
        super().delete(key)


def test_interrupted_cleanup_can_be_undone(clock: FakeClock) -> None:
    world = World(clock)
    world.store = CrashingStore("memory://gocdnext-artifacts", clock=clock)
    keys = [art_key() for _ in range(4)]
    for key in keys:
        world.obj(key)
    clock.advance(timedelta(days=1))
    before = dict(world.store.objects)
    plan = plan_cleanup(scan_orphans(world.db, world.store, ctx=world.ctx()))
    with pytest.raises(KeyboardInterrupt):
        clean_orphans(plan, world.store, world.db, ctx=world.ctx(), confirm=plan.id, workers=2)
    (cleanup,) = list_cleanups(world.store)
    undone = undo_cleanup(cleanup["id"], world.store, ctx=world.ctx())
    assert undone.restored >= 1  # moved before the crash
    assert undone.restored + undone.already_there == 4
    assert {k: v for k, v in world.store.objects.items() if k in before} == before
    assert not [k for k in world.store.objects if k.startswith(QUARANTINE_PREFIX)]


def test_delete_mode_and_purge(world: World, clock: FakeClock) -> None:
    plan = plan_cleanup(scan_orphans(world.db, world.store, ctx=world.ctx()))
    deleted = clean_orphans(
        plan, world.store, world.db, ctx=world.ctx(), confirm=plan.id, mode="delete"
    )
    assert deleted.done["orphan_object"] == 3
    assert not any(world.store.exists(k) for k in world.orphans)
    assert undo_cleanup(deleted.id, world.store, ctx=world.ctx()).lost == tuple(
        sorted(world.orphans)
    )

    key = art_key()
    world.obj(key)
    clock.advance(timedelta(days=1))
    plan = plan_cleanup(scan_orphans(world.db, world.store, ctx=world.ctx()))
    quarantined = clean_orphans(plan, world.store, world.db, ctx=world.ctx(), confirm=plan.id)
    clock.advance(timedelta(days=31))
    dry = purge_quarantine(world.store, ctx=world.ctx(), older_than=timedelta(days=30))
    assert quarantined.id in dry["cleanups"]
    assert (dry["objects"], dry["applied"]) == (1, False)
    with pytest.raises(ConfirmationMismatch):
        purge_quarantine(world.store, ctx=world.ctx(), older_than=timedelta(days=30), confirm="x")
    done = purge_quarantine(
        world.store, ctx=world.ctx(), older_than=timedelta(days=30), confirm=dry["id"]
    )
    assert done["applied"]
    assert not [k for k in world.store.objects if k.startswith(QUARANTINE_PREFIX)]


class FailingListing(MemoryStore):
    """The listing fails after ``fail_after`` objects (once)."""

    fail_after = 2

    def scan(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        for n, info in enumerate(super().scan(prefix, start_after)):
            if n == self.fail_after:
                self.fail_after = -1
                raise StorageError("list at memory://: connection reset")
            yield info


def test_interrupted_scan_resumes_to_the_same_report(world: World) -> None:
    full = scan_orphans(world.db, world.store, ctx=world.ctx())
    flaky = FailingListing("memory://gocdnext-artifacts", clock=world.clock)
    flaky.objects, flaky.modified = world.store.objects, world.store.modified
    with pytest.raises(ScanInterrupted) as caught:
        scan_orphans(world.db, flaky, ctx=world.ctx())
    partial = caught.value.report
    assert not partial.complete
    assert partial.cursor
    with pytest.raises(ConfigError, match="incomplete"):
        plan_cleanup(partial)
    resumed = scan_orphans(world.db, flaky, ctx=world.ctx(), resume=partial)
    assert resumed.complete
    assert resumed.counts == full.counts
    assert [r.key for r in resumed.rows()] == [r.key for r in full.rows()]
    with pytest.raises(ReportMismatch):
        scan_orphans(world.db, MemoryStore("memory://x"), ctx=world.ctx(), resume=partial)


def test_rate_limit_paces_listing_pages(clock: FakeClock) -> None:
    world = World(clock)
    for n in range(2500):
        world.store.write(f"foreign/{n:05}", b"x")
    clock.advance(timedelta(days=1))
    slept: list[float] = []
    now = [0.0]

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = Pacer(2.0, sleep=sleep, monotonic=lambda: now[0])
    report = scan_orphans(world.db, world.store, ctx=world.ctx(), pacer=pacer)
    assert report.counts["foreign_object"] == 2500
    assert pacer.requests == 3  # one per page of 1,000
    assert slept == [0.5, 0.5]


def test_verify_content_finds_changed_bytes(world: World) -> None:
    ok_key = next(r.key for r in world.fake.rows if world.store.exists(r.key))
    world.store.corrupt(ok_key)
    world.store.modified[ok_key] -= timedelta(days=3)  # same size, old write time
    assert scan_orphans(world.db, world.store, ctx=world.ctx()).counts["sha_mismatch"] == 0
    report = scan_orphans(world.db, world.store, ctx=world.ctx(), verify_content=100)
    assert [r.key for r in report.rows("sha_mismatch")] == [ok_key]


def test_recover_then_retire_what_no_backup_holds(world: World, repo: Repository) -> None:
    take_backup(repo, world.pg, gocdnext=world.db, ctx=world.ctx(), artifacts=world.store)
    lost = [r.key for r in world.fake.rows if world.store.exists(r.key)]
    for key in lost:
        world.store.delete(key)  # the bucket lost them
    world.clock.advance(timedelta(days=1))
    report = scan_orphans(world.db, world.store, ctx=world.ctx())
    plan = plan_cleanup(report, rows=True)
    assert {i.key for i in plan.items} == {*lost, world.missing}
    recovered = recover_missing(plan, repo, world.store, ctx=world.ctx())
    assert set(recovered.recovered) == set(lost)
    assert set(recovered.unrecoverable) == {world.missing}
    assert "recovered" in recovered._repr_html_()
    assert all(world.store.read(k) == world.data[k] for k in lost)
    with pytest.raises(ConfirmationMismatch):
        retire_missing(plan, world.db, world.store, ctx=world.ctx(), confirm="nope")
    retired = retire_missing(plan, world.db, world.store, ctx=world.ctx(), confirm=plan.id)
    assert retired == {"retired": 1, "object_back": len(lost), "changed_since_scan": 0}
    row = next(r for r in world.fake.rows if r.key == world.missing)
    assert row.status == "deleting"


def test_runbooks_ask_before_acting(world: World, repo: Repository) -> None:
    take_backup(repo, world.pg, gocdnext=world.db, ctx=world.ctx(), artifacts=world.store)
    world.clock.advance(timedelta(days=1))
    first = lost_database(world.db, world.store, ctx=world.ctx())
    assert not first.applied
    assert f"confirm={first.confirm_id}" in first._repr_html_()
    assert first.confirm_id is not None
    assert all(world.store.exists(k) for k in world.orphans)
    with pytest.raises(ConfirmationMismatch):
        lost_database(world.db, world.store, ctx=world.ctx(), confirm="quarantine-nope")
    done = lost_database(world.db, world.store, ctx=world.ctx(), confirm=first.confirm_id)
    assert done.applied
    assert not any(world.store.exists(k) for k in world.orphans)
    assert done.steps[-1][1]["counts"]["orphan_object"] == 0

    kept = [r.key for r in world.fake.rows if world.store.exists(r.key)]
    for key in kept:
        world.store.delete(key)
    world.clock.advance(timedelta(days=1))
    bucket = lost_bucket(world.db, world.store, repo, ctx=world.ctx())
    assert all(world.store.exists(k) for k in kept)  # recovered without asking
    assert bucket.confirm_id is not None  # the one row no backup can help
    final = lost_bucket(world.db, world.store, repo, ctx=world.ctx(), confirm=bucket.confirm_id)
    assert final.applied
    after = final.steps[-1][1]["counts"]
    assert after["missing_object"] == 0


def test_unsafe_keys_in_a_forged_report_are_never_touched(world: World) -> None:
    report = scan_orphans(world.db, world.store, ctx=world.ctx())
    plan = plan_cleanup(report)
    forged = attrs.evolve(
        plan,
        items=(
            *plan.items,
            OrphanRow(key="../../etc/passwd", cls=OrphanClass.ORPHAN_OBJECT, size_bytes=1),
            OrphanRow(key="/etc/shadow", cls=OrphanClass.ORPHAN_OBJECT, size_bytes=1),
            OrphanRow(key=f"{QUARANTINE_PREFIX}x/cleanup.json", cls=OrphanClass.ORPHAN_OBJECT),
        ),
    )
    done = clean_orphans(forged, world.store, world.db, ctx=world.ctx(), confirm=forged.id)
    assert done.done["orphan_object"] == 3
    assert {k for k, why in done.skipped.items() if why.startswith("unsafe")} == {
        "../../etc/passwd",
        "/etc/shadow",
        f"{QUARANTINE_PREFIX}x/cleanup.json",
    }


def test_unicode_and_very_long_keys_round_trip_through_quarantine(clock: FakeClock) -> None:
    world = World(clock)
    keys = [f"run/{u()}/job/{u()}/{u()}", "exports/é ü/" + "x" * 900, "notes/日本語.txt"]
    for key in keys:
        world.obj(key)
    clock.advance(timedelta(days=1))
    report = scan_orphans(world.db, world.store, ctx=world.ctx())
    assert report.counts["orphan_object"] == 1
    assert report.counts["foreign_object"] == 2
    before = dict(world.store.objects)
    plan = plan_cleanup(report, ["orphan_object", "foreign_object"])
    done = clean_orphans(plan, world.store, world.db, ctx=world.ctx(), confirm=plan.id)
    assert done.done["foreign_object"] == 2
    assert not any(world.store.exists(k) for k in keys)
    undo_cleanup(done.id, world.store, ctx=world.ctx())
    assert world.store.objects == before
