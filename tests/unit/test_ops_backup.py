"""take_backup against the fakes: commit protocol, failures, cancellation, dedup, progress."""

from __future__ import annotations

import itertools

import pytest

from gocdbackup.context import CancelToken, OpContext
from gocdbackup.errors import Cancelled, ConfigError, DatabaseNotFound, PostgresError, ToolFailed
from gocdbackup.model import BackupStatus
from gocdbackup.model.artifacts import ObjectKind, ObjectRef
from gocdbackup.ops import get_backup, list_backups, take_backup
from gocdbackup.repository import Repository
from gocdbackup.testing import (
    FakeClock,
    FakeGocdnext,
    FakePostgres,
    MemoryStore,
    RecordingProgress,
)


def test_backup_commits_a_manifest_with_counts_and_point(
    repo: Repository, db: FakePostgres, ctx: OpContext
) -> None:
    backup = take_backup(repo, db, ctx=ctx, label="nightly")
    assert backup.status is BackupStatus.DONE
    assert backup.label == "nightly"
    assert backup.point.goose_version == 86
    assert backup.database.table_rows() == db.databases["gocdnext"].tables
    assert len(backup.components[0].chunks) > 3  # content-defined chunks
    assert [b.id for b in list_backups(repo)] == [backup.id]
    assert get_backup(repo, backup.id) == backup


def test_second_backup_of_unchanged_db_stores_nothing_new(
    repo: Repository, db: FakePostgres, ctx: OpContext, store: MemoryStore
) -> None:
    first = take_backup(repo, db, ctx=ctx)
    data_before = {k: v for k, v in store.objects.items() if k.startswith("data/")}
    second = take_backup(repo, db, ctx=ctx)
    assert second.dedup_ratio == 1.0
    assert second.stored_bytes == 0
    assert {k: v for k, v in store.objects.items() if k.startswith("data/")} == data_before
    assert first.dedup_ratio == 0.0


def test_small_change_shares_most_chunks(
    repo: Repository, db: FakePostgres, ctx: OpContext
) -> None:
    take_backup(repo, db, ctx=ctx)
    db.databases["gocdnext"].payload_bytes += 4096  # the tail of the dump changes
    second = take_backup(repo, db, ctx=ctx)
    assert second.dedup_ratio > 0.8


def test_dump_failure_lists_nothing(repo: Repository, db: FakePostgres, ctx: OpContext) -> None:
    db.fail_dump_after = 500_000
    with pytest.raises(ToolFailed, match="pg_dump was killed"):
        take_backup(repo, db, ctx=ctx)
    assert list_backups(repo) == []
    assert repo.backup_ids() == []


def test_cancel_mid_stream_lists_nothing(
    repo: Repository, db: FakePostgres, clock: FakeClock
) -> None:
    token = CancelToken()

    def cancel_after_some(event: object) -> None:
        if getattr(event, "done", 0) > 200_000:
            token.cancel("user pressed Ctrl-C")

    ctx = OpContext(progress=RecordingProgress(cancel_after_some), cancel=token, clock=clock)
    with pytest.raises(Cancelled, match="Ctrl-C"):
        take_backup(repo, db, ctx=ctx)
    assert repo.backup_ids() == []


def test_missing_database(repo: Repository, ctx: OpContext) -> None:
    with pytest.raises(DatabaseNotFound):
        take_backup(repo, FakePostgres("nope", {}), ctx=ctx)
    assert repo.backup_ids() == []


def test_progress_reports_dump_bytes(
    repo: Repository, db: FakePostgres, ctx: OpContext, progress: RecordingProgress
) -> None:
    backup = take_backup(repo, db, ctx=ctx)
    dump = [e for e in progress.events if e.phase == "dump"]
    assert dump[0].done == 0
    assert dump[-1].done == backup.size_bytes
    assert all(a.done <= b.done for a, b in itertools.pairwise(dump))


def test_artefacts_without_gocdnext_rows_are_refused_before_anything(
    repo: Repository, db: FakePostgres, ctx: OpContext
) -> None:
    with pytest.raises(ConfigError, match="gocdnext="):
        take_backup(repo, db, ctx=ctx, artifacts=MemoryStore("memory://gocdnext-artifacts"))
    assert db.events == []  # no snapshot was taken
    assert list_backups(repo) == []


def test_gocdnext_rows_are_read_in_the_snapshot_while_it_is_held(
    db: FakePostgres, gocdnext: FakeGocdnext, ctx: OpContext
) -> None:
    contents = db.databases["gocdnext"]
    contents.objects = [ObjectRef(kind=ObjectKind.CACHE, key="cache/a", row_id="1", status="ready")]
    with db.snapshot(ctx) as snap:
        contents.objects = []  # a change after the export is not seen in the snapshot
        assert [r.key for r in gocdnext.referenced_objects(snap.snapshot_id)] == ["cache/a"]
    with pytest.raises(PostgresError, match="snapshot"):
        gocdnext.referenced_objects(snap.snapshot_id)  # no longer held open
