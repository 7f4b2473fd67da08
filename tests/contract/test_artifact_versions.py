"""Version ids of the copied objects on a versioned S3 bucket (moto server) and on GCS (the
emulator's generations): recorded in the artefact index; on S3 the listed version is what is
read even when a writer replaces the object after the listing."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from gocdbackup.context import OpContext
from gocdbackup.drivers.fsspec_store import FsspecStore
from gocdbackup.model.artifacts import ObjectKind, ObjectRef
from gocdbackup.ops import take_backup
from gocdbackup.ops.artifact_index import load_index
from gocdbackup.repository import Repository
from gocdbackup.testing import FakeDatabaseContents, FakeGocdnext, FakePostgres, MemoryStore

from .conftest import GCS_OPTIONS, S3_KEY, S3_SECRET, EmulatorGcsStore, Server, unique_bucket

CACHE_KEY = "cache/p1/" + "c" * 64
ARTIFACT_KEY = "run/r1/job/j1/0b5c2a7e-1111-4aaa-8aaa-000000000001"


class RacingStore(FsspecStore):
    """Overwrites the cache object right after the backup listed it, before it is read."""

    raced = False

    def _race(self, key: str) -> None:
        if key == CACHE_KEY and not self.raced:
            self.raced = True
            self.write(key, b"newer content" * 100)

    @contextmanager
    def open_read(
        self, key: str, size_hint: int | None = None, version: str | None = None
    ) -> Iterator[Any]:
        self._race(key)
        with super().open_read(key, size_hint, version) as stream:
            yield stream

    def read_many(self, wanted: Sequence[tuple[str, str | None]]) -> dict[str, bytes]:
        for key, _ in wanted:
            self._race(key)
        return super().read_many(wanted)


class RacingGcsStore(RacingStore, EmulatorGcsStore):
    pass


def _objects(store: FsspecStore) -> list[ObjectRef]:
    refs = []
    for kind, key, data in (
        (ObjectKind.CACHE, CACHE_KEY, b"cached content" * 100),
        (ObjectKind.ARTIFACT, ARTIFACT_KEY, os.urandom(30_000)),
    ):
        store.write(key, data)
        refs.append(
            ObjectRef(
                kind=kind,
                key=key,
                row_id=key[-4:],
                status="ready",
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
        )
    return refs


def _backup(store: FsspecStore) -> dict[str, Any]:
    refs = _objects(store)
    listed = {i.key: i.version for i in store.list("")}
    db = FakePostgres(
        "gocdnext", {"gocdnext": FakeDatabaseContents(tables={"public.runs": 1}, objects=refs)}
    )
    repo = Repository.init(MemoryStore(), b"pass", now=OpContext().now(), scrypt_n=2**10)
    ctx = OpContext()
    backup = take_backup(repo, db, gocdnext=FakeGocdnext(db), ctx=ctx, artifacts=store)
    index = load_index(repo, backup, ctx)
    assert index is not None
    return {
        "listed": listed,
        "entries": {e.ref.key: e for e in index.entries},
        "marker": backup.point.store_marker,
        "refs": {r.key: r for r in refs},
    }


def test_versioned_s3_bucket_records_and_reads_the_listed_version(moto_server: Server) -> None:
    bucket = unique_bucket()
    options = {"endpoint_url": moto_server.endpoint, "key": S3_KEY, "secret": S3_SECRET}
    store = RacingStore(f"s3://{bucket}", {**options, "version_aware": True})
    store.fs.mkdir(bucket)
    store.fs.call_s3(
        "put_bucket_versioning", Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    got = _backup(store)
    for key, entry in got["entries"].items():
        assert entry.version is not None
        assert entry.version == got["listed"][key]
        assert entry.sha256 == got["refs"][key].sha256  # the listed version, not the newer one
        assert entry.finding == ""
    assert store.raced
    assert store.list("").__next__().version != got["listed"][CACHE_KEY]  # it was replaced
    assert got["marker"].endswith("; 2 object version ids in the artefact index")


def test_unversioned_s3_records_no_version(moto_server: Server) -> None:
    bucket = unique_bucket()
    options = {"endpoint_url": moto_server.endpoint, "key": S3_KEY, "secret": S3_SECRET}
    store = FsspecStore(f"s3://{bucket}", {**options, "version_aware": True})
    store.fs.mkdir(bucket)
    got = _backup(store)
    assert all(e.version is None for e in got["entries"].values())
    assert "version" not in got["marker"]


def test_gcs_generations_are_recorded(gcs_server: Server) -> None:
    bucket = unique_bucket()
    store = RacingGcsStore(f"gs://{bucket}", GCS_OPTIONS)
    store.fs.mkdir(bucket)
    got = _backup(store)
    for key, entry in got["entries"].items():
        assert entry.version is not None
        assert entry.version == got["listed"][key]
    assert store.raced
    # not pinned (a bucket without Object Versioning drops the old generation): the newer
    # content was read, and is reported as differing from the database
    cache = got["entries"][CACHE_KEY]
    assert cache.finding == "content differs from the database's SHA-256"
