"""Garbage collection: pure planning, deletion, safety under concurrent backups."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from gocdbackup.context import OpContext, SystemClock
from gocdbackup.errors import OutOfOrder, PreconditionFailed, ToolFailed
from gocdbackup.model.durations import format_duration, parse_duration
from gocdbackup.model.gc import BlobInfo, GcTally, Verdict, judge_blobs, plan_gc
from gocdbackup.ops import take_backup
from gocdbackup.ops.gc import collect_garbage
from gocdbackup.repository import Repository
from gocdbackup.repository.locks import LOCKS_PREFIX
from gocdbackup.repository.repo import blob_key, manifest_key
from gocdbackup.testing import FakeClock, FakeDatabaseContents, FakePostgres, MemoryStore

from .conftest import PASS, SMALL_CHUNKS

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
ids = st.text("0123456789abcdef", min_size=64, max_size=64)
ages = st.none() | st.integers(0, 72 * 3600).map(lambda s: NOW - timedelta(seconds=s))


@given(
    st.lists(st.tuples(ids, st.integers(0, 10**6), ages), unique_by=lambda t: t[0], max_size=30),
    st.data(),
    st.integers(0, 48 * 3600),
)
def test_every_blob_lands_in_exactly_one_class(
    blobs: list, data: st.DataObject, grace_s: int
) -> None:  # type: ignore[type-arg]
    infos = sorted(
        (BlobInfo(blob_id=i, size_bytes=n, modified_at=m) for i, n, m in blobs),
        key=lambda b: b.blob_id,
    )
    referenced = set(data.draw(st.sets(st.sampled_from([b[0] for b in blobs]))) if blobs else set())
    grace = timedelta(seconds=grace_s)
    tally = GcTally(NOW, grace)
    # referenced ids in order, some repeated (several manifests name the same blob)
    verdicts = list(judge_blobs(infos, sorted([*referenced, *referenced]), tally))
    deleted = {b.blob_id for b, v in verdicts if v is Verdict.DELETE}
    recent = {b.blob_id for b, v in verdicts if v is Verdict.TOO_RECENT}
    plan = tally.plan()
    assert plan.blobs == len(infos) == len(verdicts)
    assert plan.referenced + len(deleted) + len(recent) == len(infos)
    assert (plan.to_delete, plan.too_recent) == (len(deleted), len(recent))
    assert not deleted & referenced  # never a referenced blob
    assert not deleted & recent
    for b, v in verdicts:
        if v is Verdict.DELETE:
            assert b.modified_at is not None
            assert NOW - b.modified_at >= grace
    assert plan_gc(reversed(infos), referenced, now=NOW, grace=grace) == plan
    assert plan.sample == tuple(sorted(deleted))[:10]


def test_blobs_of_unknown_age_are_kept() -> None:
    plan = plan_gc(
        [BlobInfo(blob_id="a" * 64, size_bytes=1, modified_at=None)],
        set(),
        now=NOW,
        grace=timedelta(0),
    )
    assert plan.to_delete == 0
    assert plan.too_recent == 1


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("0s", timedelta(0)),
        ("30m", timedelta(minutes=30)),
        ("6h", timedelta(hours=6)),
        ("2d", timedelta(days=2)),
        ("1d12h", timedelta(hours=36)),
        ("1w", timedelta(days=7)),
    ],
)
def test_durations(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta
    assert parse_duration(format_duration(delta)) == delta


@pytest.mark.parametrize("bad", ["", "6", "h", "6x", "-1h", "1.5h", "six hours"])
def test_bad_durations(bad: str) -> None:
    from gocdbackup.errors import ConfigError

    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration(bad)


def test_gc_deletes_only_old_unreferenced_blobs(
    repo: Repository, store: MemoryStore, db: FakePostgres, ctx: OpContext, clock: FakeClock
) -> None:
    kept = take_backup(repo, db, ctx=ctx)
    db.fail_dump_after = 2_000_000  # a failed backup leaves unreferenced blobs behind
    db.databases["gocdnext"].tables["public.runs"] += 1  # different content from here on
    with pytest.raises(ToolFailed):
        take_backup(repo, db, ctx=ctx)
    orphans = {b.blob_id for b in repo.blobs()} - {c.blob_id for c in kept.components[0].chunks}
    assert orphans

    young = collect_garbage(repo, ctx=ctx, grace=timedelta(hours=24), dry_run=False)
    assert young.deleted == 0  # the failed backup's blobs are too recent
    assert young.plan.too_recent == len(orphans)

    clock.advance(timedelta(hours=25))
    dry = collect_garbage(repo, ctx=ctx)
    assert dry.dry_run
    assert dry.plan.to_delete == len(orphans)
    assert set(dry.plan.sample) <= orphans
    assert all(store.exists(blob_key(o)) for o in orphans)  # a dry run deletes nothing

    done = collect_garbage(repo, ctx=ctx, dry_run=False)
    assert done.deleted == len(orphans)
    assert done.deleted_bytes == dry.plan.reclaimable_bytes
    assert not any(store.exists(blob_key(o)) for o in orphans)
    assert all(store.exists(blob_key(c.blob_id)) for c in kept.components[0].chunks)
    assert list(store.list(LOCKS_PREFIX)) == []


def test_gc_deletes_in_batches_of_a_thousand(
    repo: Repository, store: MemoryStore, ctx: OpContext
) -> None:
    """2,500 unreferenced blobs go in three requests (S3's DeleteObjects takes 1,000 keys)."""
    for n in range(2500):
        repo.put_blob(f"{n:064x}", b"x")
    store.delete_batches.clear()
    done = collect_garbage(repo, ctx=ctx, grace=timedelta(0), dry_run=False)
    assert done.deleted == 2500
    assert store.delete_batches == [1000, 1000, 500]
    assert list(repo.blobs()) == []


def test_gc_refuses_with_an_unreadable_manifest(
    repo: Repository, store: MemoryStore, db: FakePostgres, ctx: OpContext
) -> None:
    b = take_backup(repo, db, ctx=ctx)
    store.write(manifest_key(b.id), b"garbage")
    before = dict(store.objects)
    with pytest.raises(PreconditionFailed, match="refuses to run"):
        collect_garbage(repo, ctx=ctx, grace=timedelta(0), dry_run=False)
    assert {k: v for k, v in store.objects.items() if not k.startswith(LOCKS_PREFIX)} == before


def test_concurrent_backups_and_gc_never_lose_a_committed_blob() -> None:
    """Real threads: backups of changing databases and zero-grace collections, interleaved by
    the scheduler. Every committed manifest's blobs must exist at the end."""
    store = MemoryStore()
    repo = Repository.init(store, PASS, now=datetime.now(UTC), chunker=SMALL_CHUNKS, scrypt_n=2**10)
    repo.lock_wait = timedelta(seconds=60)
    errors: list[BaseException] = []

    def backups(seed: int) -> None:
        try:
            for n in range(6):
                db = FakePostgres(
                    "g",
                    {
                        "g": FakeDatabaseContents(
                            tables={"t": seed * 100 + n}, payload_bytes=400_000 + 5_000 * n
                        )
                    },
                )
                if n % 3 == 2:
                    db.fail_dump_after = 150_000  # leaves orphans for the collector
                with contextlib.suppress(ToolFailed):
                    take_backup(repo, db, ctx=OpContext(clock=SystemClock()))
        except BaseException as exc:
            errors.append(exc)

    def collector() -> None:
        try:
            for _ in range(10):
                collect_garbage(
                    repo, ctx=OpContext(clock=SystemClock()), grace=timedelta(0), dry_run=False
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=backups, args=(s,)) for s in range(3)] + [
        threading.Thread(target=collector)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stored = {b.blob_id for b in repo.blobs()}
    committed = [repo.read_manifest(i).backup for i in repo.backup_ids()]
    assert len(committed) == 12
    for backup in committed:
        assert {c.blob_id for c in backup.components[0].chunks} <= stored


class BackupGcMachine(RuleBasedStateMachine):
    """A model of interleavings at operation granularity, with crashes: a crashed backup leaves
    its blobs and an unreleased lease; time passes; collections run with any grace. Invariant:
    every committed manifest's blobs exist."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(step=timedelta(seconds=1))
        self.store = MemoryStore(clock=self.clock)
        self.repo = Repository.init(
            self.store, PASS, now=self.clock.now(), chunker=SMALL_CHUNKS, scrypt_n=2**10
        )
        self.size = 200_000

    @rule(change=st.integers(0, 50_000), crash=st.booleans())
    def backup(self, change: int, crash: bool) -> None:
        self.size += change
        db = FakePostgres(
            "g", {"g": FakeDatabaseContents(tables={"t": self.size}, payload_bytes=self.size)}
        )
        if crash:
            db.fail_dump_after = self.size // 2
        with contextlib.suppress(ToolFailed):
            take_backup(self.repo, db, ctx=OpContext(clock=self.clock))

    @rule(hours=st.integers(0, 48))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(timedelta(hours=hours))

    @rule(grace_hours=st.integers(0, 30))
    def gc(self, grace_hours: int) -> None:
        collect_garbage(
            self.repo,
            ctx=OpContext(clock=self.clock),
            grace=timedelta(hours=grace_hours),
            dry_run=False,
        )

    @invariant()
    def committed_backups_are_whole(self) -> None:
        stored = {b.blob_id for b in self.repo.blobs()}
        for backup_id in self.repo.backup_ids():
            backup = self.repo.read_manifest(backup_id).backup
            assert {c.blob_id for c in backup.components[0].chunks} <= stored


TestBackupGcMachine = BackupGcMachine.TestCase
TestBackupGcMachine.settings = settings(max_examples=25, stateful_step_count=12, deadline=None)


def test_out_of_order_streams_stop_before_any_verdict_about_them() -> None:
    old = NOW - timedelta(days=3)
    blobs = [BlobInfo(blob_id=c * 64, size_bytes=1, modified_at=old) for c in "bac"]
    with pytest.raises(OutOfOrder, match="blobs are not listed in order"):
        list(judge_blobs(blobs, [], GcTally(NOW, timedelta(0))))
    ordered = sorted(blobs, key=lambda b: b.blob_id)
    with pytest.raises(OutOfOrder, match="referenced blob ids are not in order"):
        list(judge_blobs(ordered, ["c" * 64, "a" * 64], GcTally(NOW, timedelta(0))))


def test_gc_sorts_referenced_ids_on_disk_beyond_a_run(
    repo: Repository, ctx: OpContext, clock: FakeClock
) -> None:
    """More referenced ids than one sort run holds: spilled, merged, the same verdicts."""
    backups = [take_backup(repo, FakePostgres("gocdnext", {"gocdnext": FakeDatabaseContents(
        tables={"public.runs": n})}), ctx=ctx) for n in range(3)]  # fmt: skip
    for n in range(40):
        repo.put_blob(f"{n:064x}", b"unreferenced")
    clock.advance(timedelta(days=2))
    done = collect_garbage(repo, ctx=ctx, dry_run=False, sort_run=3)
    assert done.deleted == 40
    kept = {c.blob_id for b in backups for c in b.components[0].chunks}
    assert {b.blob_id for b in repo.blobs()} == kept
