"""Artefact-store backup and restore against the fakes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfigError, IntegrityError
from gocdbackup.model.artifacts import ObjectKind, ObjectRef, Outcome
from gocdbackup.ops import restore_backup, take_backup
from gocdbackup.ops.artifact_index import load_index
from gocdbackup.ops.artifact_restore import restore_artifacts, select
from gocdbackup.ops.copy import copy_backup
from gocdbackup.ops.gc import collect_garbage
from gocdbackup.ops.verify import verify_repository
from gocdbackup.repository import Repository
from gocdbackup.repository.repo import blob_key
from gocdbackup.testing import FakeClock, FakeGocdnext, FakePostgres, MemoryStore

from .conftest import SMALL_CHUNKS

RUN_A, RUN_B = "11111111-aaaa-4aaa-8aaa-000000000001", "11111111-aaaa-4aaa-8aaa-000000000002"


def artifact(store: MemoryStore, run: str, n: int, size: int = 50_000, **kw: Any) -> ObjectRef:
    key = f"run/{run}/job/22222222-bbbb-4bbb-8bbb-00000000000{n}/{os.urandom(4).hex()}"
    data = os.urandom(size)
    store.write(key, data)
    return ObjectRef(
        kind=ObjectKind.ARTIFACT,
        key=key,
        row_id=f"row-{key[-8:]}",
        status="ready",
        size_bytes=size,
        sha256=hashlib.sha256(data).hexdigest(),
        run_id=run,
        project_id="p1",
        **kw,
    )


@pytest.fixture
def objects(clock: FakeClock) -> MemoryStore:
    return MemoryStore("memory://gocdnext-artifacts", clock=clock)


@pytest.fixture
def refs(objects: MemoryStore, db: FakePostgres) -> list[ObjectRef]:
    out = [
        artifact(objects, RUN_A, 1),
        artifact(objects, RUN_A, 2, size=300_000),
        artifact(objects, RUN_B, 3),
    ]
    cache_data = os.urandom(20_000)
    objects.write("cache/p1/" + "c" * 64, cache_data)
    out.append(
        ObjectRef(
            kind=ObjectKind.CACHE,
            key="cache/p1/" + "c" * 64,
            row_id="c1",
            status="ready",
            size_bytes=len(cache_data),
            sha256=hashlib.sha256(cache_data).hexdigest(),
        )
    )
    objects.write("logs/33333333-cccc-4ccc-8ccc-000000000001.log.gz", b"\x1f\x8b log")
    out.append(
        ObjectRef(
            kind=ObjectKind.LOG_ARCHIVE,
            key="logs/33333333-cccc-4ccc-8ccc-000000000001.log.gz",
            row_id="j1",
            status="ready",
        )
    )
    out.append(
        ObjectRef(
            kind=ObjectKind.ARTIFACT,
            key=f"run/{RUN_B}/job/x/pending",
            row_id="pend",
            status="pending",
            size_bytes=0,
        )
    )
    db.databases["gocdnext"].objects = out
    return out


def test_backup_copies_what_the_rows_reference(
    repo: Repository,
    db: FakePostgres,
    gocdnext: FakeGocdnext,
    ctx: OpContext,
    objects: MemoryStore,
    refs: list[ObjectRef],
) -> None:
    objects.write("run/orphan/job/x/y", b"no row references me")
    backup = take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    counts = dict(backup.artifacts)
    assert counts["total"] == 6
    assert counts["copied"] == 5
    assert counts["not_ready"] == 1
    assert counts["missing"] == counts["expired_during_backup"] == 0
    assert backup.point.store_marker
    assert backup.point.store_marker.startswith("memory://gocdnext-artifacts read from")
    index = load_index(repo, backup, ctx)
    assert index is not None
    assert "run/orphan/job/x/y" not in {e.ref.key for e in index.entries}  # orphans are not copied
    assert all(not e.finding for e in index.entries)


def test_lose_the_store_and_restore_it(
    repo: Repository,
    db: FakePostgres,
    gocdnext: FakeGocdnext,
    ctx: OpContext,
    objects: MemoryStore,
    refs: list[ObjectRef],
) -> None:
    before = dict(objects.objects)
    backup = take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    lost = MemoryStore("memory://new-bucket")
    report = restore_backup(
        repo, db, backup.id, confirm=backup.id, ctx=ctx, target="restored", artifacts=lost
    )
    assert dict(report.artifacts)["written"] == 5
    assert lost.objects == {k: v for k, v in before.items() if not k.endswith("pending")}


def test_second_backup_reads_nothing_unchanged(
    repo: Repository,
    db: FakePostgres,
    gocdnext: FakeGocdnext,
    ctx: OpContext,
    objects: MemoryStore,
    refs: list[ObjectRef],
) -> None:
    take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    new = artifact(objects, RUN_B, 4)
    db.databases["gocdnext"].objects.append(new)
    second = take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    counts = dict(second.artifacts)
    assert counts["copied"] == 1
    assert counts["reused"] == 5
    assert counts["copied_bytes"] == 50_000


def test_overwritten_log_archive_is_copied_again(
    repo: Repository,
    db: FakePostgres,
    gocdnext: FakeGocdnext,
    ctx: OpContext,
    objects: MemoryStore,
    refs: list[ObjectRef],
    clock: FakeClock,
) -> None:
    take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    clock.advance(timedelta(minutes=5))
    objects.write(
        "logs/33333333-cccc-4ccc-8ccc-000000000001.log.gz", b"\x1f\x8b rerun"
    )  # same size, new content
    second = take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    assert dict(second.artifacts)["copied"] == 1


class HookedStore(MemoryStore):
    """An artefact store where something happens to a key as the backup opens it:
    ``before[key](store)`` runs before the read starts, ``during[key](store)`` just after
    (the stream already holds the old bytes).  Each hook runs once."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.before: dict[str, Callable[[MemoryStore], None]] = {}
        self.during: dict[str, Callable[[MemoryStore], None]] = {}

    @contextmanager
    def open_read(
        self, key: str, size_hint: int | None = None, version: str | None = None
    ) -> Iterator[Any]:
        if (hook := self.before.pop(key, None)) is not None:
            hook(self)
        with super().open_read(key, size_hint, version) as stream:
            if (hook := self.during.pop(key, None)) is not None:
                hook(self)
            yield stream


def test_expired_during_backup_and_missing(
    repo: Repository, db: FakePostgres, ctx: OpContext, clock: FakeClock
) -> None:
    store = HookedStore("memory://sweeping", clock=clock)
    expired = artifact(store, RUN_A, 1)
    gone = artifact(store, RUN_A, 2)
    kept = artifact(store, RUN_B, 3)
    store.before[expired.key] = lambda s: s.delete(expired.key)  # the sweeper, after listing
    store.delete(gone.key)  # lost for no reason the database knows
    db.databases["gocdnext"].objects = [expired, gone, kept]

    class Sweeper(FakeGocdnext):
        def object_rows_now(self, keys: Any) -> dict[str, str]:  # the sweeper retired the row
            return {k: v for k, v in super().object_rows_now(keys).items() if k != expired.key}

    sweeping = Sweeper(db)
    backup = take_backup(repo, db, gocdnext=sweeping, ctx=ctx, artifacts=store)
    counts = dict(backup.artifacts)
    assert counts["expired_during_backup"] == 1
    assert counts["missing"] == 1
    assert counts["copied"] == 1
    index = load_index(repo, backup, ctx)
    assert index is not None
    assert index.findings() == [
        f"{gone.key}: a ready row references it, but it is not in the store"
    ]
    with pytest.raises(IntegrityError, match="1 ready object"):
        take_backup(repo, db, gocdnext=sweeping, ctx=ctx, artifacts=store, fail_on_missing=True)
    assert repo.backup_ids() == [backup.id]


def test_content_that_differs_from_the_database_is_a_finding(
    repo: Repository,
    db: FakePostgres,
    gocdnext: FakeGocdnext,
    ctx: OpContext,
    objects: MemoryStore,
    refs: list[ObjectRef],
) -> None:
    objects.write(refs[0].key, os.urandom(refs[0].size_bytes or 0))  # same size, other bytes
    backup = take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    index = load_index(repo, backup, ctx)
    assert index is not None
    assert index.findings() == [f"{refs[0].key}: content differs from the database's SHA-256"]


def test_delta_and_selective_restore(
    repo: Repository,
    db: FakePostgres,
    gocdnext: FakeGocdnext,
    ctx: OpContext,
    objects: MemoryStore,
    refs: list[ObjectRef],
) -> None:
    backup = take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    index = load_index(repo, backup, ctx)
    assert index is not None
    right = dict(objects.objects)
    objects.delete(refs[0].key)  # someone deleted a release artefact
    objects.write(refs[2].key, b"wrong content")
    objects.write("not/in/the/index", b"left alone")
    only_a = restore_artifacts(repo, index, objects, ctx=ctx, only=select(run=RUN_A))
    assert (only_a.written, only_a.skipped) == (1, 1)
    assert objects.read(refs[0].key) == right[refs[0].key]
    assert objects.read(refs[2].key) == b"wrong content"  # run B was not selected
    everything = restore_artifacts(repo, index, objects, ctx=ctx)
    assert everything.written == 1
    assert objects.read(refs[2].key) == right[refs[2].key]
    assert objects.read("not/in/the/index") == b"left alone"


def test_unsafe_keys_are_refused_before_any_write(
    repo: Repository,
    db: FakePostgres,
    gocdnext: FakeGocdnext,
    ctx: OpContext,
    objects: MemoryStore,
    refs: list[ObjectRef],
) -> None:
    backup = take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    index = load_index(repo, backup, ctx)
    assert index is not None
    import attrs

    evil = attrs.evolve(
        index.entries[0], ref=attrs.evolve(index.entries[0].ref, key="../../etc/cron.d/x")
    )
    bad = attrs.evolve(index, entries=(*index.entries[1:], evil))
    target = MemoryStore()
    with pytest.raises(ConfigError, match="unsafe object key"):
        restore_artifacts(repo, bad, target, ctx=ctx)
    assert target.objects == {}


def test_gc_keeps_artifact_blobs_until_their_backup_is_forgotten(
    repo: Repository,
    db: FakePostgres,
    gocdnext: FakeGocdnext,
    ctx: OpContext,
    objects: MemoryStore,
    refs: list[ObjectRef],
    clock: FakeClock,
    store: MemoryStore,
) -> None:
    backup = take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    clock.advance(timedelta(days=2))
    assert collect_garbage(repo, ctx=ctx, dry_run=False).deleted == 0
    assert verify_repository(repo, ctx=ctx, read_data_percent=100).ok
    index = load_index(repo, backup, ctx)
    assert index is not None
    store.delete(blob_key(index.entries[0].chunks[0].blob_id))
    report = verify_repository(repo, ctx=ctx)
    assert report.checks[0].problems == ("1 blob(s) missing from artifacts",)
    repo.delete_manifest(backup.id)
    assert collect_garbage(repo, ctx=ctx, dry_run=False).deleted > len(index.entries)


def test_copy_carries_the_artifacts(
    repo: Repository,
    db: FakePostgres,
    gocdnext: FakeGocdnext,
    ctx: OpContext,
    objects: MemoryStore,
    refs: list[ObjectRef],
    clock: FakeClock,
) -> None:
    backup = take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    offsite = Repository.init(
        MemoryStore(clock=clock), b"offsite", now=clock.now(), chunker=SMALL_CHUNKS, scrypt_n=2**10
    )
    copy_backup(repo, offsite, backup.id, ctx=ctx)
    assert verify_repository(offsite, ctx=ctx, read_data_percent=100).ok
    fresh = MemoryStore()
    index = load_index(offsite, offsite.read_manifest(backup.id).backup, ctx)
    assert index is not None
    restore_artifacts(offsite, index, fresh, ctx=ctx)
    assert fresh.objects == {k: v for k, v in objects.objects.items() if not k.endswith("pending")}


def test_outcomes_say_whether_data_is_stored() -> None:
    assert Outcome.COPIED.stored
    assert Outcome.REUSED.stored
    assert not Outcome.EXPIRED.stored


def test_interrupted_copy_resumes_without_copying_twice(
    repo: Repository,
    db: FakePostgres,
    gocdnext: FakeGocdnext,
    clock: FakeClock,
    objects: MemoryStore,
    store: MemoryStore,
) -> None:
    from gocdbackup.context import CancelToken
    from gocdbackup.errors import Cancelled
    from gocdbackup.model import ProgressEvent
    from gocdbackup.repository.journal import JOURNAL_PREFIX
    from gocdbackup.testing import RecordingProgress

    db.databases["gocdnext"].objects = [
        artifact(objects, RUN_A, n % 10, size=5_000 + n) for n in range(40)
    ]
    token = CancelToken()

    def interrupt(event: ProgressEvent) -> None:
        if event.phase == "artifacts" and event.done >= 15:
            token.cancel("Ctrl-C")

    with pytest.raises(Cancelled):
        take_backup(
            repo,
            db,
            gocdnext=gocdnext,
            ctx=OpContext(progress=RecordingProgress(interrupt), cancel=token, clock=clock),
            artifacts=objects,
        )
    assert repo.backup_ids() == []
    assert list(store.list(JOURNAL_PREFIX))  # the journal of what was copied survives

    resumed = take_backup(
        repo, db, gocdnext=gocdnext, ctx=OpContext(clock=clock), artifacts=objects
    )
    counts = dict(resumed.artifacts)
    assert counts["reused"] >= 15
    assert counts["reused"] + counts["copied"] == 40
    assert list(store.list(JOURNAL_PREFIX)) == []  # consumed and removed at commit
    fresh = MemoryStore()
    index = load_index(repo, resumed, OpContext(clock=clock))
    assert index is not None
    restore_artifacts(repo, index, fresh, ctx=OpContext(clock=clock))
    assert fresh.objects == objects.objects


def test_an_empty_or_missing_store_is_refused(
    repo: Repository,
    db: FakePostgres,
    gocdnext: FakeGocdnext,
    ctx: OpContext,
    objects: MemoryStore,
    refs: list[ObjectRef],
) -> None:
    from gocdbackup.errors import StorageError

    with pytest.raises(StorageError, match="holds none of the 5 objects"):
        take_backup(
            repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=MemoryStore("memory://wrong-bucket")
        )
    assert repo.backup_ids() == []


def test_content_changed_mid_copy_is_a_finding(
    repo: Repository, db: FakePostgres, gocdnext: FakeGocdnext, ctx: OpContext, clock: FakeClock
) -> None:
    store = HookedStore("memory://racing", clock=clock)
    ref = artifact(store, RUN_A, 1)
    cache = cache_ref(store, "p1", b"cached " * 1000)
    store.during[ref.key] = lambda s: s.write(ref.key, os.urandom(50_000))  # a racing writer
    db.databases["gocdnext"].objects = [ref, artifact(store, RUN_A, 2), cache]
    backup = take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=store)
    index = load_index(repo, backup, ctx)
    assert index is not None
    original = index.entries[[e.ref.key for e in index.entries].index(ref.key)]
    # the bytes read came from the old object, so they still match the database
    assert index.findings() == []
    # an artefact is never rewritten by gocdnext: the next backup keeps the verified copy
    # (not the damaged live object), without reading the store again; a cache is overwritten
    # in place, so a rewritten one is read again and found to differ
    store.write(cache.key, os.urandom(len(store.objects[cache.key])))
    second = take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=store)
    later = load_index(repo, second, ctx)
    assert later is not None
    kept = later.entries[[e.ref.key for e in later.entries].index(ref.key)]
    assert (kept.outcome, kept.chunks, kept.finding) == (Outcome.REUSED, original.chunks, "")
    assert later.findings() == [f"{cache.key}: content differs from the database's SHA-256"]


def cache_ref(store: MemoryStore, project: str, data: bytes) -> ObjectRef:
    key = f"cache/{project}/" + hashlib.sha256(data[:8]).hexdigest()
    store.write(key, data)
    return ObjectRef(
        kind=ObjectKind.CACHE,
        key=key,
        row_id=f"cache-{key[-6:]}",
        status="ready",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        project_id=project,
    )


def test_nightly_backup_lists_only_where_new_objects_live(
    repo: Repository,
    db: FakePostgres,
    gocdnext: FakeGocdnext,
    ctx: OpContext,
    objects: MemoryStore,
    refs: list[ObjectRef],
) -> None:
    take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    assert objects.lists == [""]  # the first backup lists the store once
    objects.lists.clear()
    new = artifact(objects, "11111111-aaaa-4aaa-8aaa-000000000009", 4)
    db.databases["gocdnext"].objects = [*refs, new]
    second = take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    counts = dict(second.artifacts)
    assert (counts["copied"], counts["reused"]) == (1, 5)
    # artefacts already held are not looked up; the new run, the cache and the log archive
    # (which gocdnext may overwrite) are, each under its own prefix
    assert objects.lists == ["cache/p1/", "logs/", "run/11111111-aaaa-4aaa-8aaa-000000000009/"]


def test_an_artifact_lost_from_the_store_stays_in_the_next_backup(
    repo: Repository,
    db: FakePostgres,
    gocdnext: FakeGocdnext,
    ctx: OpContext,
    objects: MemoryStore,
    refs: list[ObjectRef],
) -> None:
    take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    lost = refs[0]
    objects.delete(lost.key)
    second = take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    index = load_index(repo, second, ctx)
    assert index is not None
    entry = next(e for e in index.entries if e.ref.key == lost.key)
    assert entry.outcome is Outcome.REUSED  # the verified copy is still held
    target = MemoryStore("memory://rebuilt")
    restore_artifacts(repo, index, target, ctx=ctx)
    assert hashlib.sha256(target.read(lost.key)).hexdigest() == lost.sha256


def test_versioned_store_pins_the_listed_version(
    repo: Repository, db: FakePostgres, gocdnext: FakeGocdnext, ctx: OpContext, clock: FakeClock
) -> None:
    store = HookedStore("memory://versioned", clock=clock, versioned=True)
    ref = cache_ref(store, "p1", b"first " * 5000)
    listed = store.version_of(ref.key)
    store.before[ref.key] = lambda s: s.write(ref.key, b"second " * 5000)  # before the read
    db.databases["gocdnext"].objects = [ref, artifact(store, RUN_A, 1)]
    backup = take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=store)
    index = load_index(repo, backup, ctx)
    assert index is not None
    entry = next(e for e in index.entries if e.ref.key == ref.key)
    # the object was overwritten after the listing; the listed version was read all the same
    assert store.version_of(ref.key) != listed
    assert (entry.version, entry.sha256, entry.finding) == (listed, ref.sha256, "")
    assert index.versions() == 2
    assert backup.point.store_marker is not None
    assert backup.point.store_marker.endswith("; 2 object version ids in the artefact index")


def test_a_small_restore_looks_up_its_keys_instead_of_listing_the_store(
    repo: Repository,
    db: FakePostgres,
    gocdnext: FakeGocdnext,
    ctx: OpContext,
    objects: MemoryStore,
    refs: list[ObjectRef],
) -> None:
    backup = take_backup(repo, db, gocdnext=gocdnext, ctx=ctx, artifacts=objects)
    index = load_index(repo, backup, ctx)
    assert index is not None
    objects.delete(refs[0].key)
    objects.lists.clear()
    done = restore_artifacts(repo, index, objects, ctx=ctx, only=select(run=RUN_A))
    assert (done.written, done.skipped) == (1, 1)
    assert objects.lists == []  # no listing of a possibly huge bucket for two objects
