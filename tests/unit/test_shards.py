"""A backup whose artefact copy is split into shards (on the in-memory fakes): the plan is not
a backup until every shard is done; shards can run in any order, again, or after an
interrupted run; garbage collection keeps a pending backup's blobs; the committed backup holds
what an unsharded one would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gocdbackup.context import OpContext
from gocdbackup.errors import ConfigError, NotFound, PreconditionFailed, ShardsMissing
from gocdbackup.model.artifacts import ObjectKind, ObjectRef
from gocdbackup.model.shards import shard_of, split
from gocdbackup.ops import take_backup
from gocdbackup.ops.artifact_index import load_index
from gocdbackup.ops.gc import collect_garbage
from gocdbackup.ops.shards import PENDING, finish_shards, run_shard, start_detached
from gocdbackup.repository import Repository
from gocdbackup.testing import (
    FakeClock,
    FakeDatabaseContents,
    FakeGocdnext,
    FakePostgres,
    MemoryStore,
    artifact_objects,
)


@pytest.fixture
def setup(clock: FakeClock) -> tuple[FakePostgres, FakeGocdnext, MemoryStore]:
    objects = MemoryStore("memory://artifacts", clock=clock)
    refs = artifact_objects(objects, 40)
    db = FakePostgres(
        "gocdnext", {"gocdnext": FakeDatabaseContents(tables={"public.runs": 5}, objects=refs)}
    )
    return db, FakeGocdnext(db), objects


@given(st.lists(st.text(min_size=1), max_size=50), st.integers(1, 16))
def test_every_key_lands_in_one_shard_the_same_every_time(keys: list[str], shards: int) -> None:
    refs = [ObjectRef(kind=ObjectKind.ARTIFACT, key=k, row_id="r", status="ready") for k in keys]
    parts = split(refs, shards)
    assert len(parts) == shards
    assert sorted(r.key for p in parts for r in p) == sorted(keys)
    for n, part in enumerate(parts):
        assert all(shard_of(r.key, shards) == n for r in part)


def test_shards_in_any_order_then_finish(
    repo: Repository,
    ctx: OpContext,
    clock: FakeClock,
    setup: tuple[FakePostgres, FakeGocdnext, MemoryStore],
) -> None:
    db, gocdnext, objects = setup
    plan = start_detached(repo, db, ctx=ctx, artifacts=objects, gocdnext=gocdnext, shards=3)
    backup_id = plan.backup.id
    assert repo.backup_ids() == []  # not a backup yet
    with pytest.raises(ShardsMissing) as missing:
        finish_shards(repo, backup_id, ctx=ctx, gocdnext=gocdnext)
    assert missing.value.missing == [0, 1, 2]
    run_shard(repo, backup_id, 2, objects, ctx=ctx)
    run_shard(repo, backup_id, 0, objects, ctx=ctx)
    again = run_shard(repo, backup_id, 0, objects, ctx=ctx)  # done already: not done again
    assert again.counts()["total"] > 0
    with pytest.raises(ShardsMissing, match="not done yet: 1"):
        finish_shards(repo, backup_id, ctx=ctx, gocdnext=gocdnext)

    clock.advance(timedelta(days=3))  # a pending backup's blobs survive a collection
    collect_garbage(repo, ctx=ctx, grace=timedelta(0), dry_run=False)

    run_shard(repo, backup_id, 1, objects, ctx=ctx)
    backup = finish_shards(repo, backup_id, ctx=ctx, gocdnext=gocdnext)
    assert repo.backup_ids() == [backup_id]
    assert repo.record_ids(PENDING) == []
    index = load_index(repo, backup, ctx)
    assert index is not None
    assert index.counts()["copied"] == 40
    assert dict(backup.artifacts)["total"] == 40
    plain = take_backup(repo, db, ctx=ctx, artifacts=objects, gocdnext=gocdnext)
    plain_index = load_index(repo, plain, ctx)
    assert plain_index is not None
    assert [(e.ref.key, e.sha256) for e in plain_index.entries] == [
        (e.ref.key, e.sha256) for e in index.entries
    ]
    assert plain_index.counts()["reused"] == 40  # the sharded backup's copies are reused
    with pytest.raises(PreconditionFailed, match="committed already"):
        finish_shards(repo, backup_id, ctx=ctx, gocdnext=gocdnext)


def test_an_object_gone_during_a_shard_is_judged_at_finish(
    repo: Repository, ctx: OpContext, setup: tuple[FakePostgres, FakeGocdnext, MemoryStore]
) -> None:
    db, gocdnext, objects = setup
    plan = start_detached(repo, db, ctx=ctx, artifacts=objects, gocdnext=gocdnext, shards=1)
    gone = sorted(objects.objects)[0]
    objects.delete(gone)  # the sweeper, between the plan and the shard
    contents = db.databases["gocdnext"]
    contents.objects = [r for r in contents.objects if r.key != gone]  # its row retired too
    run_shard(repo, plan.backup.id, 0, objects, ctx=ctx)
    backup = finish_shards(repo, plan.backup.id, ctx=ctx, gocdnext=gocdnext)
    assert dict(backup.artifacts)["expired_during_backup"] == 1
    assert dict(backup.artifacts)["missing"] == 0


def test_bad_shard_requests_are_refused(
    repo: Repository, ctx: OpContext, setup: tuple[FakePostgres, FakeGocdnext, MemoryStore]
) -> None:
    db, gocdnext, objects = setup
    with pytest.raises(ConfigError, match="between 1 and"):
        start_detached(repo, db, ctx=ctx, artifacts=objects, gocdnext=gocdnext, shards=0)
    plan = start_detached(repo, db, ctx=ctx, artifacts=objects, gocdnext=gocdnext, shards=2)
    with pytest.raises(PreconditionFailed, match="shards 0 to 1"):
        run_shard(repo, plan.backup.id, 2, objects, ctx=ctx)
    with pytest.raises(NotFound, match="waits for shards"):
        run_shard(repo, "20260101T000000Z-abcdef", 0, objects, ctx=ctx)
