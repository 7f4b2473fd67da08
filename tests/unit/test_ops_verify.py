"""verify_repository reports damage per backup and never raises for it."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import attrs
import pytest

from gocdbackup.context import CancelToken, OpContext
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.errors import BackupNotFound, Cancelled, ConfigError
from gocdbackup.model.artifacts import ObjectKind, ObjectRef
from gocdbackup.model.manifest import Manifest
from gocdbackup.model.verify import BlobProblem
from gocdbackup.ops import take_backup, verify_repository
from gocdbackup.ops.artifact_index import load_index
from gocdbackup.ops.verify import sample_size
from gocdbackup.repository import Repository
from gocdbackup.repository.repo import blob_key, manifest_key
from gocdbackup.testing import (
    FakeClock,
    FakeDatabaseContents,
    FakeGocdnext,
    FakePostgres,
    MemoryStore,
    RecordingProgress,
)

from .conftest import PASS, SMALL_CHUNKS


def test_intact_repository(repo: Repository, db: FakePostgres, ctx: OpContext) -> None:
    b = take_backup(repo, db, ctx=ctx)
    report = verify_repository(repo, ctx=ctx, read_data_percent=100)
    assert report.ok
    assert report.checks[0].chunks_read == len(b.components[0].chunks)


def test_structure_only_reads_no_data(repo: Repository, db: FakePostgres, ctx: OpContext) -> None:
    take_backup(repo, db, ctx=ctx)
    report = verify_repository(repo, ctx=ctx)
    assert report.ok
    assert report.checks[0].chunks_read == 0


def test_damage_is_reported_per_backup(
    repo: Repository, db: FakePostgres, ctx: OpContext, store: MemoryStore
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
    repo: Repository, db: FakePostgres, ctx: OpContext, store: MemoryStore
) -> None:
    b = take_backup(repo, db, ctx=ctx)
    store.delete(blob_key(b.components[0].chunks[0].blob_id))
    report = verify_repository(repo, ctx=ctx)
    assert report.checks[0].problems == ("1 blob(s) missing from postgres_dump",)


def test_truncated_blob_found_without_reading_data(
    repo: Repository, db: FakePostgres, ctx: OpContext, store: MemoryStore
) -> None:
    b = take_backup(repo, db, ctx=ctx)
    key = blob_key(b.components[0].chunks[0].blob_id)
    store.write(key, store.read(key)[:-10])
    report = verify_repository(repo, ctx=ctx)
    assert report.checks[0].problems == ("1 blob(s) of the wrong size in postgres_dump",)
    assert report.checks[0].chunks_read == 0
    assert "backup " + b.id + " is damaged" in str(report.checks[0])


def test_unreadable_manifest_is_a_repository_problem(
    repo: Repository, db: FakePostgres, ctx: OpContext, store: MemoryStore
) -> None:
    b = take_backup(repo, db, ctx=ctx)
    store.write(manifest_key(b.id), b"{not json")
    report = verify_repository(repo, ctx=ctx)
    assert not report.ok
    assert report.problems
    assert b.id in report.problems[0]


def test_sampling_reads_about_the_share_asked(
    repo: Repository, db: FakePostgres, ctx: OpContext
) -> None:
    b = take_backup(repo, db, ctx=ctx)
    unique = len({c.blob_id for c in b.components[0].chunks})
    report = verify_repository(repo, ctx=ctx, read_data_percent=50, seed=1)
    assert report.checks[0].chunks_read == math.ceil(unique * 0.5)


@pytest.mark.parametrize("percent", [-1, 100.5])
def test_read_data_bounds(repo: Repository, ctx: OpContext, percent: float) -> None:
    with pytest.raises(ConfigError):
        verify_repository(repo, ctx=ctx, read_data_percent=percent)


def test_unknown_backup(repo: Repository, ctx: OpContext) -> None:
    with pytest.raises(BackupNotFound):
        verify_repository(repo, ctx=ctx, backup_id="nope")


# -- issue #10 ---------------------------------------------------------------------------------


def _objects(store: MemoryStore, n: int, size: int = 40_000) -> list[ObjectRef]:
    out = []
    for i in range(n):
        key = f"run/{RUN}/job/22222222-bbbb-4bbb-8bbb-00000000000{i}/{os.urandom(4).hex()}"
        data = os.urandom(size)
        store.write(key, data)
        out.append(
            ObjectRef(
                kind=ObjectKind.ARTIFACT,
                key=key,
                row_id=f"row-{i}",
                status="ready",
                size_bytes=size,
                sha256=hashlib.sha256(data).hexdigest(),
                run_id=RUN,
            )
        )
    return out


RUN = "11111111-aaaa-4aaa-8aaa-000000000001"


def test_any_share_reads_at_least_one_chunk_of_a_one_chunk_backup(
    repo: Repository, ctx: OpContext
) -> None:
    db = FakePostgres(
        "gocdnext", {"gocdnext": FakeDatabaseContents(tables={"public.runs": 1}, payload_bytes=10)}
    )
    b = take_backup(repo, db, ctx=ctx)
    assert len(b.components[0].chunks) == 1
    report = verify_repository(repo, ctx=ctx, read_data_percent=10)
    assert report.checks[0].chunks_read == 1
    assert verify_repository(repo, ctx=ctx, read_data_percent=0.001).checks[0].chunks_read == 1


def test_any_share_reads_a_chunk_of_every_part(
    repo: Repository, db: FakePostgres, ctx: OpContext, clock: FakeClock
) -> None:
    objects = MemoryStore(clock=clock)
    db.databases["gocdnext"].objects = _objects(objects, 2)
    rows = FakeGocdnext(db)
    first = take_backup(repo, db, gocdnext=rows, ctx=ctx, artifacts=objects)
    take_backup(repo, db, gocdnext=rows, ctx=ctx, artifacts=objects)  # all of it deduplicated
    dump_blobs = {c.blob_id for c in first.component("postgres_dump").chunks}
    index = first.component("artifact_index")
    report = verify_repository(repo, ctx=ctx, read_data_percent=1)
    for check in report.checks:
        # the index in full, one chunk of the dump, one of the artefacts
        assert check.chunks_read == len(index.chunks) + 2
    assert sample_size(len(dump_blobs), 1) == 1


@pytest.mark.parametrize(
    ("blobs", "percent", "expected"),
    [(0, 50, 0), (1, 0, 0), (1, 0.01, 1), (10, 10, 1), (10, 30, 3), (10, 31, 4), (7, 100, 7)],
)
def test_sample_size_rounds_up(blobs: int, percent: float, expected: int) -> None:
    assert sample_size(blobs, percent) == expected


def _file_repo(tmp_path: Path, clock: FakeClock) -> tuple[Repository, Path]:
    root = tmp_path / "repo"
    store = FsspecStore(f"file://{root}")
    return Repository.init(store, PASS, now=clock.now(), chunker=SMALL_CHUNKS, scrypt_n=2**10), root


def _overwrite(path: Path) -> None:
    """Scribble over the middle of a file, keeping its size (only reading it finds out)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 16] = bytes(16)
    path.write_bytes(bytes(data))


def test_every_damaged_blob_is_reported_with_what_it_breaks(
    tmp_path: Path, db: FakePostgres, ctx: OpContext, clock: FakeClock
) -> None:
    repo, root = _file_repo(tmp_path, clock)
    objects = MemoryStore(clock=clock)
    refs = _objects(objects, 3)
    db.databases["gocdnext"].objects = refs
    backup = take_backup(repo, db, gocdnext=FakeGocdnext(db), ctx=ctx, artifacts=objects)
    dump = [c.blob_id for c in backup.component("postgres_dump").chunks]
    index = load_index(repo, backup, ctx)
    assert index is not None
    victim_object = index.entries[1]
    missing, corrupted = dump[1], dump[-2]
    corrupted_object = victim_object.chunks[0].blob_id
    (root / blob_key(missing)).unlink()
    _overwrite(root / blob_key(corrupted))
    _overwrite(root / blob_key(corrupted_object))

    report = verify_repository(repo, ctx=ctx, read_data_percent=100)

    assert not report.ok
    (check,) = report.checks
    by_blob = {d.blob_id: d for d in check.damaged}
    assert set(by_blob) == {missing, corrupted, corrupted_object}
    assert by_blob[missing].problem is BlobProblem.MISSING
    assert by_blob[corrupted].problem is BlobProblem.UNREADABLE
    assert by_blob[corrupted_object].problem is BlobProblem.UNREADABLE
    assert "fails authentication" in by_blob[corrupted].detail
    for d in check.damaged:
        assert d.backup_id == backup.id
    assert by_blob[missing].breaks == ("the database dump",)
    assert by_blob[corrupted].breaks == ("the database dump",)
    assert by_blob[corrupted_object].breaks == (victim_object.ref.key,)
    assert by_blob[corrupted_object].keys == (victim_object.ref.key,)
    assert set(check.problems) == {
        "1 blob(s) missing from postgres_dump",
        "1 blob(s) unreadable in postgres_dump",
        "1 blob(s) unreadable in artifacts",
    }
    # every other chunk was read: the damage did not stop the check
    assert check.chunks_read == check.chunks - 1
    assert {d["blob_id"] for d in report.summary()["damaged_blobs"]} == set(by_blob)


def test_damaged_index_names_the_index(
    repo: Repository, db: FakePostgres, ctx: OpContext, store: MemoryStore, clock: FakeClock
) -> None:
    objects = MemoryStore(clock=clock)
    db.databases["gocdnext"].objects = _objects(objects, 2)
    backup = take_backup(repo, db, gocdnext=FakeGocdnext(db), ctx=ctx, artifacts=objects)
    (index_blob,) = {c.blob_id for c in backup.component("artifact_index").chunks}
    store.corrupt(blob_key(index_blob))
    (check,) = verify_repository(repo, ctx=ctx).checks
    (damaged,) = check.damaged
    assert damaged.blob_id == index_blob
    assert damaged.problem is BlobProblem.UNREADABLE
    assert damaged.breaks == ("the artefact index (and so every artefact of the backup)",)
    assert "artefact index unreadable: the artefacts were not checked" in check.problems


def test_a_blob_two_backups_need_is_reported_for_each(
    repo: Repository, db: FakePostgres, ctx: OpContext, store: MemoryStore
) -> None:
    first = take_backup(repo, db, ctx=ctx)
    second = take_backup(repo, db, ctx=ctx)
    shared = first.components[0].chunks[-1].blob_id
    store.delete(blob_key(shared))
    report = verify_repository(repo, ctx=ctx)
    assert [(d.backup_id, d.blob_id) for d in report.damaged] == [
        (first.id, shared),
        (second.id, shared),
    ]
    assert repr(report).startswith("<VerifyReport DAMAGED: 1 blob in 2 backups;")


def test_whole_stream_hash_checked_when_every_chunk_reads(
    repo: Repository, db: FakePostgres, ctx: OpContext
) -> None:
    b = take_backup(repo, db, ctx=ctx)
    dump = b.components[0]
    swapped = attrs.evolve(dump, chunks=tuple(reversed(dump.chunks)))
    repo.write_manifest(Manifest(backup=attrs.evolve(b, components=(swapped,))))
    (check,) = verify_repository(repo, ctx=ctx, read_data_percent=100).checks
    assert not check.ok
    assert check.damaged == ()
    assert check.chunks_read == len(dump.chunks)
    assert "postgres_dump stream does not match its recorded SHA-256" in check.problems[0]


def test_report_renders(
    repo: Repository, db: FakePostgres, ctx: OpContext, store: MemoryStore
) -> None:
    b = take_backup(repo, db, ctx=ctx)
    report = verify_repository(repo, ctx=ctx, read_data_percent=100)
    n = len(b.components[0].chunks)
    assert repr(report) == f"<VerifyReport ok: 1 backup, {n}/{n} chunks read>"
    assert repr(report.checks[0]) == f"<BackupCheck {b.id} ok: {n}/{n} chunks read>"

    store.corrupt(blob_key(b.components[0].chunks[0].blob_id))
    store.delete(blob_key(b.components[0].chunks[1].blob_id))
    report = verify_repository(repo, ctx=ctx, read_data_percent=100)
    assert repr(report) == f"<VerifyReport DAMAGED: 2 blobs in 1 backup; {n - 1}/{n} chunks read>"
    assert (
        repr(report.checks[0])
        == f"<BackupCheck {b.id} DAMAGED: 2 damaged blobs, {n - 1}/{n} chunks read>"
    )
    rows = report.rows()
    assert rows == [
        {
            "backup_id": b.id,
            "ok": False,
            "chunks": n,
            "chunks_read": n - 1,
            "damaged_blobs": 2,
            "problems": "1 blob(s) missing from postgres_dump; 1 blob(s) unreadable in postgres_dump",
        }
    ]
    for row in rows + report.damaged_rows():
        assert all(isinstance(v, str | int | float | bool) for v in row.values()), row
    html = report._repr_html_()
    assert html.count("<table>") == 2
    assert "{" not in html  # no dict text in cells
    assert "[" not in html  # nor list text
    assert "the database dump" in html
    frame = report.to_pandas()
    assert list(frame["backup_id"]) == [b.id]
    assert int(frame["damaged_blobs"][0]) == 2
    assert "breaks the database dump" in str(report.damaged[0])


def test_cancelling_a_full_read_stops_it_and_is_no_damage(
    repo: Repository, db: FakePostgres, ctx: OpContext, clock: FakeClock
) -> None:
    take_backup(repo, db, ctx=ctx)
    token = CancelToken()

    def cancel_midway(event: object) -> None:
        if getattr(event, "phase", "") == "read" and getattr(event, "done", 0) > 200_000:
            token.cancel("user pressed Ctrl-C")

    cancelling = OpContext(progress=RecordingProgress(cancel_midway), cancel=token, clock=clock)
    with pytest.raises(Cancelled, match="Ctrl-C"):
        verify_repository(repo, ctx=cancelling, read_data_percent=100)
