"""copy_backup: into another repository, re-encrypted, deduplicated, verified."""

from __future__ import annotations

import pytest

from gocdbackup.context import OpContext
from gocdbackup.errors import BackupNotFound, IntegrityError
from gocdbackup.ops import restore_backup, take_backup
from gocdbackup.ops.copy import copy_backup
from gocdbackup.repository import Repository
from gocdbackup.repository.repo import blob_key
from gocdbackup.testing import FakeClock, FakePostgres, MemoryStore

from .conftest import SMALL_CHUNKS


@pytest.fixture
def target_store(clock: FakeClock) -> MemoryStore:
    return MemoryStore("memory://offsite", clock=clock)


@pytest.fixture
def target(target_store: MemoryStore, clock: FakeClock) -> Repository:
    return Repository.init(
        target_store, b"another passphrase", now=clock.now(), chunker=SMALL_CHUNKS, scrypt_n=2**10
    )


def test_copy_restores_from_the_target(
    repo: Repository, target: Repository, db: FakePostgres, ctx: OpContext
) -> None:
    backup = take_backup(repo, db, ctx=ctx)
    result = copy_backup(repo, target, backup.id, ctx=ctx)
    assert not result.already_there
    assert result.blobs_written == len({c.blob_id for c in backup.components[0].chunks})
    copied = target.read_manifest(backup.id).backup
    assert copied.components[0].sha256 == backup.components[0].sha256
    # different keys: different blob names, nothing shared with the source
    assert {c.blob_id for c in copied.components[0].chunks}.isdisjoint(
        {c.blob_id for c in backup.components[0].chunks}
    )
    restore_backup(target, db, backup.id, confirm=backup.id, ctx=ctx, target="from_offsite")
    assert db.databases["from_offsite"].tables == db.databases["gocdnext"].tables


def test_second_copy_writes_only_new_chunks(
    repo: Repository, target: Repository, db: FakePostgres, ctx: OpContext
) -> None:
    first = take_backup(repo, db, ctx=ctx)
    copy_backup(repo, target, first.id, ctx=ctx)
    db.databases["gocdnext"].payload_bytes += 50_000
    second = take_backup(repo, db, ctx=ctx)
    result = copy_backup(repo, target, second.id, ctx=ctx)
    assert 0 < result.blobs_written < len(second.components[0].chunks) / 2
    again = copy_backup(repo, target, second.id, ctx=ctx)
    assert again.already_there
    assert again.blobs_written == 0


def test_damaged_source_copies_nothing(
    repo: Repository, target: Repository, db: FakePostgres, ctx: OpContext, store: MemoryStore
) -> None:
    backup = take_backup(repo, db, ctx=ctx)
    store.corrupt(blob_key(backup.components[0].chunks[1].blob_id))
    with pytest.raises(IntegrityError):
        copy_backup(repo, target, backup.id, ctx=ctx)
    assert target.backup_ids() == []
    with pytest.raises(BackupNotFound):
        copy_backup(repo, target, "20990101T000000Z-000000", ctx=ctx)
