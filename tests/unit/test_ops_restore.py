"""restore_backup against the fakes: nothing is touched unless everything checks out."""

from __future__ import annotations

import pytest

from gocdbackup.context import OpContext
from gocdbackup.errors import (
    BackupNotFound,
    ConfirmationMismatch,
    IntegrityError,
    RestoreMismatch,
    TargetExists,
    ToolFailed,
)
from gocdbackup.model import BackupSet
from gocdbackup.ops import restore_backup, take_backup
from gocdbackup.ops.restore import staging_name
from gocdbackup.repository import Repository
from gocdbackup.repository.repo import blob_key
from gocdbackup.testing import FakeDatabaseContents, FakePostgres, MemoryStore


@pytest.fixture
def backup(repo: Repository, db: FakePostgres, ctx: OpContext) -> BackupSet:
    b = take_backup(repo, db, ctx=ctx)
    db.events.clear()
    return b


def test_restore_into_a_new_database(
    repo: Repository, db: FakePostgres, ctx: OpContext, backup: BackupSet
) -> None:
    report = restore_backup(repo, db, backup.id, confirm=backup.id, ctx=ctx, target="restored")
    assert db.databases["restored"].tables == db.databases["gocdnext"].tables
    assert report.replaced is False
    assert report.goose_version == 86
    assert report.rows_checked == sum(db.databases["gocdnext"].tables.values())
    assert [e.split()[0] for e in db.events] == ["create", "load", "swap"]


def test_replace_needs_the_flag(
    repo: Repository, db: FakePostgres, ctx: OpContext, backup: BackupSet
) -> None:
    with pytest.raises(TargetExists, match="replace=True"):
        restore_backup(repo, db, backup.id, confirm=backup.id, ctx=ctx)
    assert db.events == []


def test_replace_swaps_in_the_restored_copy(
    repo: Repository, db: FakePostgres, ctx: OpContext, backup: BackupSet
) -> None:
    db.databases["gocdnext"].tables["public.runs"] = 999  # the live DB moved on
    report = restore_backup(repo, db, backup.id, confirm=backup.id, ctx=ctx, replace=True)
    assert report.replaced is True
    assert db.databases["gocdnext"].tables["public.runs"] == 120


def test_confirm_must_repeat_the_id(
    repo: Repository, db: FakePostgres, ctx: OpContext, backup: BackupSet
) -> None:
    with pytest.raises(ConfirmationMismatch, match="nothing was changed"):
        restore_backup(repo, db, backup.id, confirm="yes", ctx=ctx, replace=True)
    assert db.events == []


def test_unknown_backup(repo: Repository, db: FakePostgres, ctx: OpContext) -> None:
    with pytest.raises(BackupNotFound):
        restore_backup(
            repo, db, "20990101T000000Z-000000", confirm="20990101T000000Z-000000", ctx=ctx
        )


def test_corrupted_chunk_never_reaches_the_target(
    repo: Repository, db: FakePostgres, ctx: OpContext, backup: BackupSet, store: MemoryStore
) -> None:
    chunk = backup.components[0].chunks[2]
    store.corrupt(blob_key(chunk.blob_id), offset=40)
    live = dict(db.databases["gocdnext"].tables)
    with pytest.raises(IntegrityError, match="fails authentication"):
        restore_backup(repo, db, backup.id, confirm=backup.id, ctx=ctx, replace=True)
    # only the staging database saw the bytes, and it is gone; the target never changed
    assert [e.split()[0] for e in db.events] == ["create", "load", "drop"]
    assert set(db.databases) == {"gocdnext"}
    assert db.databases["gocdnext"].tables == live


def test_missing_chunk_refuses_before_touching_anything(
    repo: Repository, db: FakePostgres, ctx: OpContext, backup: BackupSet, store: MemoryStore
) -> None:
    store.delete(blob_key(backup.components[0].chunks[-1].blob_id))
    with pytest.raises(IntegrityError, match="1 chunk\\(s\\) missing") as info:
        restore_backup(repo, db, backup.id, confirm=backup.id, ctx=ctx, replace=True)
    assert info.value.problems
    assert db.events == []


def test_row_count_drift_keeps_the_target_and_drops_staging(
    repo: Repository, db: FakePostgres, ctx: OpContext, backup: BackupSet
) -> None:
    db.drift = {"public.artifacts": -3}
    with pytest.raises(RestoreMismatch) as info:
        restore_backup(repo, db, backup.id, confirm=backup.id, ctx=ctx, replace=True)
    assert info.value.problems == ("public.artifacts: expected 40 rows, found 37 rows",)
    assert set(db.databases) == {"gocdnext"}
    assert not any(e.startswith("swap") for e in db.events)
    assert db.events[-1].startswith("drop gocdnext__restore_")


def test_failed_load_keeps_the_target(
    repo: Repository, db: FakePostgres, ctx: OpContext, backup: BackupSet
) -> None:
    db.fail_load = True
    with pytest.raises(ToolFailed, match="pg_restore exited 1"):
        restore_backup(repo, db, backup.id, confirm=backup.id, ctx=ctx, replace=True)
    assert set(db.databases) == {"gocdnext"}


def test_goose_mismatch_is_reported(
    repo: Repository, db: FakePostgres, ctx: OpContext, backup: BackupSet
) -> None:
    db.goose_after_load = 85
    with pytest.raises(RestoreMismatch) as info:
        restore_backup(repo, db, backup.id, confirm=backup.id, ctx=ctx, target="copy")
    assert info.value.problems[0] == "goose version: expected 86, found 85"
    assert "copy" not in db.databases


def test_database_without_goose_restores(repo: Repository, ctx: OpContext) -> None:
    db = FakePostgres(
        "gocdnext", {"gocdnext": FakeDatabaseContents(tables={"public.t": 1}, goose=None)}
    )
    backup = take_backup(repo, db, ctx=ctx)
    restored = restore_backup(repo, db, backup.id, confirm=backup.id, ctx=ctx, target="copy")
    assert restored.goose_version is None


def test_owner_missing_on_target_falls_back(
    repo: Repository, db: FakePostgres, ctx: OpContext, backup: BackupSet
) -> None:
    db.roles.discard("gocdnext")
    restore_backup(repo, db, backup.id, confirm=backup.id, ctx=ctx, target="copy")
    assert db.databases["copy"].owner == "postgres"


@pytest.mark.parametrize("target", ["g", "x" * 63, "é" * 40])
def test_staging_names_fit_postgres_identifiers(target: str) -> None:
    name = staging_name(target, "abcdef")
    assert len(name.encode()) <= 63
    assert name.endswith("__restore_abcdef")
