"""The WAL archive on a real PostgreSQL whose ``archive_command`` runs ``gocdbackup wal push``:
segments land in the repository encrypted, re-pushing the same file succeeds, another file
under an archived name is refused, ``wal fetch`` gives the bytes back, ``wal verify`` finds a
removed segment, and garbage collection keeps every archived segment's blobs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta

import pytest

from gocdbackup import wal_fetch, wal_verify
from gocdbackup.ops.wal import WAL_KIND
from tests.integration.archiving import Archive, archiving_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def archive() -> Iterator[Archive]:
    with archiving_server() as server:
        yield server


def test_archive_command_pushes_every_segment(archive: Archive) -> None:
    names = [archive.switch() for _ in range(3)]
    report = wal_verify(archive.gb())
    assert report.ok, report.summary()
    archived = set(archive.gb().repository.record_ids(WAL_KIND))
    assert set(names) <= archived
    assert report.timelines[0].timeline == 1
    assert report.timelines[0].last >= names[-1]
    # nothing of a segment is stored in the clear
    raw = b"".join(p.read_bytes() for p in (archive.base / "repo").rglob("*") if p.is_file())
    segment = archive.base / "seg"
    wal_fetch(archive.gb(), names[-1], str(segment))
    assert segment.read_bytes()[:4096] not in raw


def test_fetch_gives_the_bytes_back_and_a_missing_file_exits_1(archive: Archive) -> None:
    name = archive.switch()
    dest = archive.base / "fetched"
    proc = archive.cli("wal", "fetch", name, str(dest))
    assert proc.returncode == 0, proc.stderr
    assert dest.stat().st_size == 16 * 1024 * 1024
    missing = archive.cli("wal", "fetch", "0000000100000000000000FF", str(archive.base / "no"))
    assert missing.returncode == 1
    assert "not in the archive" in missing.stderr
    assert not (archive.base / "no").exists()
    history = archive.cli("wal", "fetch", "00000002.history", str(archive.base / "no"))
    assert history.returncode == 1


def test_pushing_again_is_idempotent_and_another_file_is_refused(archive: Archive) -> None:
    name = archive.switch()
    copy = archive.base / name
    wal_fetch(archive.gb(), name, str(copy))
    again = archive.cli("wal", "push", str(copy))
    assert again.returncode == 0, again.stderr
    assert "already archived" in again.stdout
    before = hashlib.sha256(copy.read_bytes()).hexdigest()
    other = archive.base / "other"
    other.write_bytes(b"\x01" * 100)
    refused = archive.cli("wal", "push", str(other), "--name", name)
    assert refused.returncode == 1
    assert "archived already with other content" in refused.stderr
    wal_fetch(archive.gb(), name, str(copy))
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == before
    bad = archive.cli("wal", "push", str(other))
    assert bad.returncode == 1
    assert "is not the name of a WAL file" in bad.stderr


def test_verify_finds_a_removed_segment(archive: Archive) -> None:
    names = [archive.switch() for _ in range(3)]
    repo = archive.gb().repository
    kept = repo.read_record(WAL_KIND, names[1])
    assert kept is not None
    repo.delete_record(WAL_KIND, names[1])
    try:
        report = wal_verify(archive.gb())
        assert not report.ok
        assert [(g.first, g.missing) for g in report.gaps] == [(names[1], 1)]
        proc = archive.cli("wal", "verify")
        assert proc.returncode == 1
        assert f"segment {names[1]} is missing" in proc.stdout
    finally:
        repo.write_record(WAL_KIND, names[1], kept)
    assert wal_verify(archive.gb()).ok


def test_garbage_collection_keeps_the_archived_segments(archive: Archive) -> None:
    gb = archive.gb()
    result = gb.gc(grace=timedelta(0), dry_run=True).summary()
    assert result["blobs"] > 0
    assert result["unreferenced"] == 0
