"""verify_repository reports damage per backup and never raises for it."""

from __future__ import annotations

import pytest

from gocdbackup.context import OpContext
from gocdbackup.errors import BackupNotFound, ConfigError
from gocdbackup.ops import take_backup, verify_repository
from gocdbackup.repository import Repository
from gocdbackup.repository.repo import blob_key, manifest_key
from gocdbackup.testing import FakeDatabase, MemoryStore


def test_intact_repository(repo: Repository, db: FakeDatabase, ctx: OpContext) -> None:
    b = take_backup(repo, db, ctx=ctx)
    report = verify_repository(repo, ctx=ctx, read_data_percent=100)
    assert report.ok
    assert report.checks[0].chunks_read == len(b.components[0].chunks)


def test_structure_only_reads_no_data(repo: Repository, db: FakeDatabase, ctx: OpContext) -> None:
    take_backup(repo, db, ctx=ctx)
    report = verify_repository(repo, ctx=ctx)
    assert report.ok
    assert report.checks[0].chunks_read == 0


def test_damage_is_reported_per_backup(
    repo: Repository, db: FakeDatabase, ctx: OpContext, store: MemoryStore
) -> None:
    good = take_backup(repo, db, ctx=ctx)
    db.databases["gocdnext"].payload_bytes += 100_000
    bad = take_backup(repo, db, ctx=ctx)
    unique_to_bad = {c.blob_id for c in bad.components[0].chunks} - {
        c.blob_id for c in good.components[0].chunks
    }
    victim = sorted(unique_to_bad)[0]
    store.corrupt(blob_key(victim))
    report = verify_repository(repo, ctx=ctx, read_data_percent=100)
    assert not report.ok
    by_id = {c.backup_id: c for c in report.checks}
    assert by_id[good.id].ok
    assert not by_id[bad.id].ok
    assert "damaged" in str(by_id[bad.id])


def test_missing_blob_found_without_reading_data(
    repo: Repository, db: FakeDatabase, ctx: OpContext, store: MemoryStore
) -> None:
    b = take_backup(repo, db, ctx=ctx)
    store.delete(blob_key(b.components[0].chunks[0].blob_id))
    report = verify_repository(repo, ctx=ctx)
    assert report.checks[0].problems == ("1 blob(s) missing from postgres_dump",)


def test_truncated_blob_found_without_reading_data(
    repo: Repository, db: FakeDatabase, ctx: OpContext, store: MemoryStore
) -> None:
    b = take_backup(repo, db, ctx=ctx)
    key = blob_key(b.components[0].chunks[0].blob_id)
    store.write(key, store.read(key)[:-10])
    report = verify_repository(repo, ctx=ctx)
    assert report.checks[0].problems == ("1 blob(s) of the wrong size in postgres_dump",)
    assert report.checks[0].chunks_read == 0
    assert "backup " + b.id + " is damaged" in str(report.checks[0])


def test_unreadable_manifest_is_a_repository_problem(
    repo: Repository, db: FakeDatabase, ctx: OpContext, store: MemoryStore
) -> None:
    b = take_backup(repo, db, ctx=ctx)
    store.write(manifest_key(b.id), b"{not json")
    report = verify_repository(repo, ctx=ctx)
    assert not report.ok
    assert report.problems
    assert b.id in report.problems[0]


def test_sampling_reads_about_the_share_asked(
    repo: Repository, db: FakeDatabase, ctx: OpContext
) -> None:
    b = take_backup(repo, db, ctx=ctx)
    unique = len({c.blob_id for c in b.components[0].chunks})
    report = verify_repository(repo, ctx=ctx, read_data_percent=50, seed=1)
    assert report.checks[0].chunks_read == round(unique * 0.5)


@pytest.mark.parametrize("percent", [-1, 100.5])
def test_read_data_bounds(repo: Repository, ctx: OpContext, percent: float) -> None:
    with pytest.raises(ConfigError):
        verify_repository(repo, ctx=ctx, read_data_percent=percent)


def test_unknown_backup(repo: Repository, ctx: OpContext) -> None:
    with pytest.raises(BackupNotFound):
        verify_repository(repo, ctx=ctx, backup_id="nope")
